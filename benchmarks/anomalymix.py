"""AnomalyMix throughput: samples per second per style, and of the whole sample pipeline.

Usage (defaults: the synthetic world and the object bank built from its proxy COCO bank)::

    python -m training.coco_subset --annotations output/synthetic/ood_bank/annotations/\
instances_train.json --images output/synthetic/ood_bank/train --out output/ood_objects \
--min-image-side 256
    python benchmarks/anomalymix.py [--bank output/ood_objects] \
        [--data-root output/synthetic/cityscapes] [--samples 200] [--frame-size 1024 2048]

Prints one line per measurement; single process, one thread per process as a DataLoader
worker would have. ``paste`` times AnomalyMix (probability 1, style alignment included) plus
the OoD-aware crop on frames already in memory; ``pipeline`` times
:class:`training.finetune_data.OodTrainingSet` (PNG read, scale, AnomalyMix at the given
probability, crop, flip, normalisation).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

# training/ is not an installed package: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anomaly_seg_ros.datasets.cityscapes import CityscapesDataset
from anomaly_seg_ros.model.sidecar import IMAGENET_MEAN, IMAGENET_STD
from training.anomalymix import AnomalyMix, AnomalyMixConfig, ood_aware_crop
from training.coco_subset import ObjectBank
from training.finetune_data import IndexedFrames, OodTrainingSet, SampleConfig

STYLES = ("none", "fda", "reinhard", "histogram")


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def bench_paste(
    bank: ObjectBank, frames: list, style: str, samples: int, crop: tuple[int, int]
) -> float:
    """Samples/s of paste + OoD-aware crop on in-memory frames."""
    mix = AnomalyMix(bank, AnomalyMixConfig(probability=1.0, style=style))
    rng = np.random.default_rng(0)
    for index in range(min(5, samples)):  # warm the bank cache and OpenCV
        image, labels = frames[index % len(frames)]
        mix(image, labels, rng)
    started = time.perf_counter()
    for index in range(samples):
        image, labels = frames[index % len(frames)]
        sample = mix(image, labels, rng)
        ood_aware_crop(sample.image, sample.labels, crop, sample.box, rng)
    return _rate(samples, time.perf_counter() - started)


def bench_pipeline(
    bank: ObjectBank, source: IndexedFrames, probability: float, samples: int, crop: tuple
) -> float:
    """Samples/s of the full training-sample pipeline (frames read from disk)."""
    mix = AnomalyMix(bank, AnomalyMixConfig(probability=probability, style="fda"))
    dataset = OodTrainingSet(
        source, mix, SampleConfig(crop_size=crop, scale_range=(0.8, 1.2)),
        IMAGENET_MEAN, IMAGENET_STD,
    )  # fmt: skip
    started = time.perf_counter()
    for index in range(samples):
        dataset[index % len(dataset)]
    return _rate(samples, time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bank", default="output/ood_objects")
    parser.add_argument("--data-root", default="output/synthetic/cityscapes")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--crop", type=int, nargs=2, default=(192, 384))
    parser.add_argument(
        "--frame-size", type=int, nargs=2, default=None,
        help="also time paste on frames resized to H W (e.g. 1024 2048, Cityscapes)",
    )  # fmt: skip
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    bank = ObjectBank(args.bank)
    source = IndexedFrames(CityscapesDataset(args.data_root, "train"))
    frames = [source.read(index) for index in range(min(20, len(source)))]
    crop = tuple(args.crop)
    figures: dict[str, float] = {}
    size = f"{frames[0][1].shape[0]}x{frames[0][1].shape[1]}"
    for style in STYLES:
        figures[f"paste/{style}/{size}"] = bench_paste(bank, frames, style, args.samples, crop)
    if args.frame_size:
        height, width = args.frame_size
        big = [
            (cv2.resize(image, (width, height)), cv2.resize(labels, (width, height),
             interpolation=cv2.INTER_NEAREST))
            for image, labels in frames[:4]
        ]  # fmt: skip
        big_crop = (min(512, height), min(1024, width))
        for style in STYLES:
            key = f"paste/{style}/{height}x{width}"
            figures[key] = bench_paste(bank, big, style, max(20, args.samples // 4), big_crop)
    for probability in (0.1, 1.0):
        key = f"pipeline/p={probability}/{size}"
        figures[key] = bench_pipeline(bank, source, probability, args.samples, crop)
    print(f"machine: {platform.processor() or platform.machine()}, 1 thread, bank {len(bank)}")
    for key, value in figures.items():
        print(f"{key:40s} {value:8.1f} samples/s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
