"""A copy of the proxy OoD bank rendered with a real style gap to the world (issue 12).

The proxy bank comes from the world's own renderer, so style alignment has nothing to
close. This copy changes every cut-out's look the way COCO photos differ from a driving
camera: a different palette (colour channels rotated, saturation raised), a brightness
gain, and a fine print-like texture, keeping shapes and masks. A model fine-tuned on it
without alignment can learn "odd palette = anomaly"; FDA / Reinhard should remove that::

    python research/style_gap_bank.py output/ood_objects output/ood_objects_gap
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import cv2
import numpy as np


def restyle(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotate the colour channels, raise saturation and brightness, add a fine texture."""
    image = rgb[..., (1, 2, 0)].astype(np.float32)
    grey = image.mean(axis=-1, keepdims=True)
    image = grey + 1.6 * (image - grey)  # more saturated
    image = image * 1.35 + 25.0  # brighter
    rows, cols = np.mgrid[: image.shape[0], : image.shape[1]]
    period = rng.uniform(3.0, 6.0)
    texture = 18.0 * np.sign(np.sin((rows + cols) * 2 * np.pi / period))
    image = image + texture[..., None]
    return np.clip(image, 0, 255).astype(np.uint8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    index = json.loads((args.source / "index.json").read_text())
    tmp = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "objects").mkdir(parents=True)
    shutil.copytree(args.source / "masks", tmp / "masks")
    rng = np.random.default_rng(args.seed)
    for entry in index["objects"]:
        bgr = cv2.imread(str(args.source / entry["image"]), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"{args.source / entry['image']} is unreadable")
        styled = restyle(bgr[..., ::-1], rng)
        cv2.imwrite(str(tmp / entry["image"]), styled[..., ::-1])
    (tmp / "index.json").write_text(json.dumps(index))
    shutil.rmtree(args.out, ignore_errors=True)
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
