"""Generate the synthetic world datasets.

Usage::

    python -m demo.synthetic.generate --out data/synthetic \
        --train 2000 --val 300 --anomaly 200 --ood-bank 500 --seed 0

writes ``cityscapes/`` (Cityscapes layout, train + val), ``anomaly/`` (Fishyscapes
processed layout) and ``ood_bank/`` (COCO layout) under ``--out``, plus
``synthetic_world.json`` recording the arguments. Every frame depends only on
``(seed, family, index)``, so a run is reproducible and can be extended.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from demo.synthetic.anomalies import road_anomalies
from demo.synthetic.ood_bank import render_bank_image
from demo.synthetic.scene import Frame, World
from demo.synthetic.writers import CocoWriter, write_anomaly_frame, write_cityscapes_frame

LOGGER = logging.getLogger(__name__)
#: Random-stream ids per family, so families never share random numbers.
FAMILY = {"train": 1, "val": 2, "anomaly": 3, "ood_bank": 4}
#: A test-anomaly frame is re-drawn until at least this fraction of it is anomalous.
MIN_ANOMALY_FRACTION = 0.001
_MAX_ATTEMPTS = 20


def frame_rng(seed: int, family: str, index: int, attempt: int = 0) -> np.random.Generator:
    """The random generator of one frame."""
    return np.random.default_rng([seed, FAMILY[family], index, attempt])


def render_frame(world: World, seed: int, split: str, index: int) -> Frame:
    """The ``index``-th Cityscapes-style frame of ``split`` ("train" or "val")."""
    return world.render(frame_rng(seed, split, index))


def render_anomaly_frame(world: World, seed: int, index: int) -> Frame:
    """The ``index``-th test-anomaly frame, with visible anomalies."""
    minimum = MIN_ANOMALY_FRACTION * world.height * world.width
    frame = world.render(frame_rng(seed, "anomaly", index, 0), anomalies=road_anomalies)
    for attempt in range(1, _MAX_ATTEMPTS):
        if frame.anomaly.sum() >= minimum:
            break
        frame = world.render(frame_rng(seed, "anomaly", index, attempt), anomalies=road_anomalies)
    return frame


def generate(
    out: Path,
    train: int,
    val: int,
    anomaly: int,
    ood_bank: int,
    seed: int,
    height: int = 256,
    width: int = 512,
    progress: bool = True,
) -> dict[str, object]:
    """Write all requested families under ``out``; returns the manifest dict."""
    cv2.setNumThreads(1)
    world = World(height, width, seed)
    out.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("val", val)):
        for index in tqdm(range(count), desc=split, disable=not progress):
            write_cityscapes_frame(
                out / "cityscapes", split, index, render_frame(world, seed, split, index)
            )
    for index in tqdm(range(anomaly), desc="anomaly", disable=not progress):
        write_anomaly_frame(out / "anomaly", index, render_anomaly_frame(world, seed, index))
    if ood_bank:
        writer = CocoWriter(out / "ood_bank")
        for index in tqdm(range(ood_bank), desc="ood bank", disable=not progress):
            writer.add(*render_bank_image(frame_rng(seed, "ood_bank", index)))
        writer.close()
    manifest = {
        "format": "anomaly_seg_ros/synthetic_world",
        "version": 1,
        "seed": seed,
        "height": height,
        "width": width,
        "train": train,
        "val": val,
        "anomaly": anomaly,
        "ood_bank": ood_bank,
    }
    (out / "synthetic_world.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--train", type=int, default=2000, help="training frames")
    parser.add_argument("--val", type=int, default=300, help="validation frames")
    parser.add_argument("--anomaly", type=int, default=200, help="test-anomaly frames (family a)")
    parser.add_argument("--ood-bank", type=int, default=500, help="OoD bank images (family b)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    counts = (args.train, args.val, args.anomaly, args.ood_bank)
    if min(counts) < 0:
        LOGGER.error("frame counts must be >= 0, got %s", counts)
        return 2
    generate(args.out, *counts, args.seed, args.height, args.width, not args.no_progress)
    LOGGER.info("wrote synthetic world to %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
