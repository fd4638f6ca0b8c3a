"""Per-epoch validation of fine-tuning: in-distribution mIoU and anomaly AP / AUROC / FPR95.

Both run the network through the exported graph's own :class:`AnomalyHead` (same
upsampling, same summary) and score with :func:`anomaly_seg_ros.pipeline.scores.compute_score`, so
the numbers are those the Detector would give on the same frames (before refinement).
Metrics are taken at the network input resolution: frames are resized by ``scale`` first
(labels with nearest neighbour).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torch import nn

from anomaly_seg_ros.evaluation.factory import create_pixel_evaluator
from anomaly_seg_ros.evaluation.pixel_metrics import PixelMetrics
from anomaly_seg_ros.evaluation.segmentation_metrics import SegmentationEvaluator
from anomaly_seg_ros.model.summary import OUTPUT_NAMES, LogitSummary
from anomaly_seg_ros.networks.head import AnomalyHead
from anomaly_seg_ros.pipeline.scores import compute_score
from training.finetune_data import FrameSource
from training.seg_dataset import to_tensor
from training.seg_eval import metrics_from_confusion

#: Scores reported by default (the paper's table: Max Logit, Energy, Max-Min Logit).
DEFAULT_SCORES = ("max_logit", "energy", "max_min_logit")


@dataclass(frozen=True)
class EvalSettings:
    """How validation reads frames.

    :param mean: normalization mean (RGB, [0, 1] scale).
    :param std: normalization std.
    :param scale: frames are resized by this factor before inference.
    :param scores: anomaly scores to evaluate.
    :param pixel_mode: ``exact`` or ``binned`` (bounded memory for big sets).
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 1.0
    scores: tuple[str, ...] = DEFAULT_SCORES
    pixel_mode: str = "exact"


@dataclass
class EvalResult:
    """Segmentation and anomaly metrics; NaN / empty for a set that was not given.

    :param miou: mIoU as ``cityscapesscripts`` computes it.
    :param miou_present: mIoU over the classes present in the ground truth (as
        ``training/train.py`` reports it: the fair number for a world without some classes).
    :param anomaly: pixel metrics per score name.
    """

    miou: float = float("nan")
    miou_present: float = float("nan")
    anomaly: dict[str, PixelMetrics] = field(default_factory=dict)


def _resized(image: np.ndarray, label: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    if abs(scale - 1.0) < 1e-6:
        return image, label
    size = (max(16, round(label.shape[1] * scale)), max(16, round(label.shape[0] * scale)))
    return (
        cv2.resize(image, size, interpolation=cv2.INTER_AREA),
        cv2.resize(label, size, interpolation=cv2.INTER_NEAREST),
    )


@torch.no_grad()
def logit_summary(
    head: AnomalyHead, image: np.ndarray, settings: EvalSettings, device: torch.device
) -> LogitSummary:
    """Run one (H, W, 3) uint8 RGB frame through ``head``; summary at (H, W)."""
    batch = to_tensor(image, settings.mean, settings.std)[None].to(device)
    outputs = head(batch)
    return LogitSummary.from_outputs(
        {name: tensor.cpu().numpy() for name, tensor in zip(OUTPUT_NAMES, outputs)}
    )


def evaluate(
    network: nn.Module,
    settings: EvalSettings,
    class_names: Sequence[str],
    id_frames: FrameSource | None = None,
    anomaly_frames: FrameSource | None = None,
    device: torch.device | None = None,
) -> EvalResult:
    """mIoU on ``id_frames`` (train-ID labels) and anomaly metrics on ``anomaly_frames``
    (labels 0 ID / 1 anomaly / 255 void). Leaves the network in eval mode (a fine-tuning
    loop sets its own mix of train/eval modes again afterwards).

    :raises anomaly_seg_ros.errors.InputError: frames with malformed labels.
    """
    device = device or torch.device("cpu")
    head = AnomalyHead(network.eval()).eval()
    result = EvalResult()
    if id_frames is not None and len(id_frames):
        segmentation = SegmentationEvaluator(tuple(class_names))
        for index in range(len(id_frames)):
            image, label = _resized(*id_frames.read(index), settings.scale)
            summary = logit_summary(head, image, settings, device)
            segmentation.process(summary.label, label)
        metrics = metrics_from_confusion(segmentation.confusion, tuple(class_names))
        result.miou, result.miou_present = metrics.miou, metrics.miou_present
    if anomaly_frames is not None and len(anomaly_frames):
        evaluators = {
            name: create_pixel_evaluator(settings.pixel_mode) for name in settings.scores
        }
        for index in range(len(anomaly_frames)):
            image, label = _resized(*anomaly_frames.read(index), settings.scale)
            summary = logit_summary(head, image, settings, device)
            for name, evaluator in evaluators.items():
                evaluator.process(compute_score(name, summary), label)
        result.anomaly = {name: ev.evaluate() for name, ev in evaluators.items()}
    return result
