"""What a fine-tuning run leaves behind: checkpoint, ONNX with the anomaly head, SML stats."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from anomaly_seg_ros.networks.checkpoint import CheckpointMeta, save_checkpoint
from training.finetune_data import FrameSource

if TYPE_CHECKING:
    from training.finetune_config import FinetuneConfig, FinetuneResult

#: Training frames the SML statistics are measured on (evenly spaced).
SML_FRAMES = 300


def write_outputs(
    network: nn.Module,
    meta: CheckpointMeta,
    config: FinetuneConfig,
    calibration_frames: FrameSource,
    out: Path,
    result: FinetuneResult,
) -> None:
    """Checkpoint, ONNX with the anomaly head (+ sidecar), SML statistics."""
    network = network.cpu().eval()
    provenance = {**meta.meta, "finetune": {"config": asdict(config), "history": result.history}}
    save_checkpoint(
        result.checkpoint, network, meta.class_names, mean=meta.mean, std=meta.std, **provenance
    )
    if config.export_size is None:
        return
    from anomaly_seg_ros.networks.export import export_onnx

    result.onnx = out / "model.onnx"
    export_onnx(
        network,
        result.onnx,
        config.export_size,
        meta.class_names,
        mean=meta.mean,
        std=meta.std,
        provenance={"source": "training/finetune.py", "base": meta.meta.get("source")},
    )
    result.sml_stats = recalibrate_sml(
        network, meta, calibration_frames, out / "model.sml.json", config.export_size
    )


def recalibrate_sml(
    network: nn.Module,
    meta: CheckpointMeta,
    frames: FrameSource,
    path: Path,
    input_size: tuple[int, int],
    count: int = SML_FRAMES,
) -> Path:
    """Per-class max-logit statistics of the fine-tuned network (``training/calibrate_sml``).

    Fine-tuning pushes logits down on OoD pixels and moves their ID statistics too, so the
    base model's SML file no longer fits. Uses ``count`` evenly spaced training frames at the
    exported input size, as the Detector will see them.
    """
    from anomaly_seg_ros.model.sml_stats import save_sml_stats
    from training.calibrate_sml import calibrate

    picks = np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).astype(int))
    images = (frames.read(int(index))[0] for index in picks)
    mean, std, pixels = calibrate(network, images, input_size, meta.mean, meta.std)
    return save_sml_stats(path, meta.class_names, mean, std, pixels)
