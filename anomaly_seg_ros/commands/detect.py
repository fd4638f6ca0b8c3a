"""``anomaly-seg detect``: run the Detector on image files and write PNGs."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np

from anomaly_seg_ros.backends import BACKEND_CHOICES
from anomaly_seg_ros.config import SCORE_TYPES, DetectorConfig, config_from_params_file
from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.models import default_model_path
from anomaly_seg_ros.visualize import heat_colors, score_display_range

_LOG = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "detect",
        help="segment images and score anomalies, writing label/score/mask/overlay PNGs",
        description="Run the detector on image files (or folders of them).",
    )
    parser.add_argument("images", nargs="+", type=Path, help="image files or folders")
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: bundled)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    parser.add_argument("--params", type=Path, help="ROS parameters YAML with detector settings")
    parser.add_argument("--sml-stats", type=Path, help="SML statistics JSON")
    parser.add_argument("--score", choices=SCORE_TYPES, help="anomaly score (overrides --params)")
    parser.add_argument("--threshold", type=float, help="mask threshold (overrides --params)")
    parser.add_argument("--save-raw", action="store_true", help="also write the score as .npy")
    parser.set_defaults(func=run)


def list_images(paths: list[Path]) -> list[Path]:
    """Expand folders (sorted, non-recursive) into image files; keep files as given."""
    images: list[Path] = []
    for path in paths:
        if path.is_dir():
            images += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            images.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    if not images:
        raise InputError(f"no images found in {[str(p) for p in paths]}")
    return images


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from anomaly_seg_ros.detector import Detector

    config = config_from_params_file(str(args.params)) if args.params else DetectorConfig()
    overrides = {"score_type": args.score, "threshold": args.threshold}
    config = config.replace(**{k: v for k, v in overrides.items() if v is not None})
    images = list_images(args.images)
    model = args.model or default_model_path()
    args.out.mkdir(parents=True, exist_ok=True)
    with Detector.from_path(model, config, args.backend, args.sml_stats) as detector:
        _LOG.info("model %s on %s", model, detector.backend.describe())
        for path in tqdm(images, desc="detect", unit="img"):
            result = detector.detect(read_rgb(path), outputs=("labels_color", "overlay"))
            stem = args.out / path.stem
            low, high = score_display_range(result.score, detector.config.threshold)
            cv2.imwrite(f"{stem}_labels.png", result.labels)
            cv2.imwrite(f"{stem}_labels_color.png", result.labels_color[..., ::-1])
            cv2.imwrite(f"{stem}_score.png", heat_colors(result.score, low, high)[..., ::-1])
            cv2.imwrite(f"{stem}_mask.png", result.mask.astype(np.uint8) * 255)
            cv2.imwrite(f"{stem}_overlay.png", result.overlay[..., ::-1])
            if args.save_raw:
                np.save(f"{stem}_score.npy", result.score)
    print(f"wrote {len(images)} × 5 images to {args.out}")
    return 0
