"""SML calibration of a torch checkpoint: per-class mean and std of the max logit on
training images (the statistics themselves:
:class:`anomaly_seg_ros.model.sml_stats.MaxLogitStatistics`,
which ``anomaly-seg calibrate-sml`` uses for exported models).

For every pixel the class with the largest logit is the prediction and that logit the
max logit; statistics are gathered per *predicted* class (Jung et al., ICCV 2021) over
full training frames at the network's input size, and written as the JSON file the
Detector reads (:mod:`anomaly_seg_ros.model.sml_stats`). Classes never predicted get mean 0,
std 1 and count 0.

Usage::

    python -m training.calibrate_sml --checkpoint output/demo_run/checkpoint.pt \
        --data-root output/synthetic/cityscapes --out models/demo/demo.sml.json --frames 300
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from anomaly_seg_ros.datasets.cityscapes import CityscapesDataset
from anomaly_seg_ros.errors import AnomalySegError
from anomaly_seg_ros.model.sml_stats import MaxLogitStatistics, save_sml_stats
from anomaly_seg_ros.networks.checkpoint import load_checkpoint
from training.seg_dataset import to_tensor

LOGGER = logging.getLogger("training.calibrate_sml")


@torch.inference_mode()
def calibrate(
    network: torch.nn.Module,
    images: Iterable[np.ndarray],
    input_size: tuple[int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Max-logit statistics of ``network`` over RGB ``images``.

    The logits are upsampled to the input size first, as the exported graph does, so the
    statistics describe the max logit the Detector sees.

    :param network: returns (B, C, h, w) logits; ``align_corners`` attribute honoured.
    :param images: (H, W, 3) uint8 RGB frames.
    :param input_size: resize frames to (height, width) first (the model's input size).
    :return: ``(mean, std, count)`` per class, (C,) each.
    """
    from anomaly_seg_ros.pipeline.preprocess import resize_smooth

    network.eval()
    statistics = None
    extra: dict[str, Sequence[float]] = {}
    if mean is not None and std is not None:
        extra = {"mean": mean, "std": std}
    for image in images:
        if input_size is not None and image.shape[:2] != tuple(input_size):
            height, width = input_size
            image = resize_smooth(image, (height, width))  # as the Detector resizes
        batch = to_tensor(image, **extra)[None]
        logits = network(batch)
        logits = F.interpolate(
            logits,
            size=image.shape[:2],
            mode="bilinear",
            align_corners=bool(getattr(network, "align_corners", False)),
        )
        if statistics is None:
            statistics = MaxLogitStatistics(logits.shape[1])
        max_logit, predicted = logits.max(dim=1)
        statistics.add(max_logit.numpy(), predicted.numpy())
    if statistics is None:
        raise ValueError("no images to calibrate on")
    return statistics.result()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Per-class max-logit statistics for SML.")
    parser.add_argument("--checkpoint", type=Path, required=True, help="package checkpoint (.pt)")
    parser.add_argument("--data-root", type=Path, required=True, help="Cityscapes-layout root")
    parser.add_argument("--split", default="train")
    parser.add_argument("--frames", type=int, default=500, help="evenly spaced frames to use")
    parser.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="resize frames to the model input size (default: as stored)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output JSON file")
    parser.add_argument("--threads", type=int, default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        network, meta = load_checkpoint(args.checkpoint)
        frames = CityscapesDataset(args.data_root, args.split)
        step = max(1, len(frames) // max(1, args.frames))
        indices = list(range(0, len(frames), step))[: args.frames]
        images = (frames[index][0] for index in tqdm(indices, desc="calibrate"))
        mean, std, count = calibrate(network, images, args.input_size, meta.mean, meta.std)
    except AnomalySegError as error:
        LOGGER.error("%s", error)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_sml_stats(args.out, meta.class_names, mean, std, count)
    LOGGER.info(
        "wrote %s (%d frames, %d classes predicted)",
        args.out,
        len(indices),
        int((count > 0).sum()),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
