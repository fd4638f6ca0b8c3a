"""``anomaly-seg detect``: run the Detector on image files and write PNGs, and each image's
anomaly objects as JSON (``<stem>_objects.json``; ground positions with ``--camera-info``
and ``--mount``)."""

from __future__ import annotations

import argparse
import io
import json
import logging
from pathlib import Path

import cv2
import numpy as np

from anomaly_seg_ros.commands.options import (
    add_detector_options,
    config_from_args,
    detector_from_args,
    model_from_args,
)
from anomaly_seg_ros.deploy.atomic import atomic_write_bytes
from anomaly_seg_ros.errors import ConfigError, InputError, OutputError
from anomaly_seg_ros.io.compressed import compressed_size
from anomaly_seg_ros.objects import (
    CameraInfoError,
    CameraMount,
    ObjectLayer,
    ObjectSettings,
)
from anomaly_seg_ros.objects.camera import load_camera_info
from anomaly_seg_ros.preprocess import MAX_IMAGE_PIXELS, check_size
from anomaly_seg_ros.visualize import heat_colors, score_display_range

LOGGER = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "detect",
        help="segment images and score anomalies, writing label/score/mask/overlay PNGs",
        description="Run the detector on image files (or folders of them).",
    )
    parser.add_argument("images", nargs="+", type=Path, help="image files or folders")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    add_detector_options(parser)
    parser.add_argument("--save-raw", action="store_true", help="also write the score as .npy")
    parser.add_argument(
        "--camera-info",
        type=Path,
        help="camera calibration (ROS calibration YAML, or a drive's description.json) "
        "for the objects' ground positions",
    )
    parser.add_argument(
        "--mount",
        type=float,
        nargs=6,
        metavar=("X", "Y", "Z", "ROLL", "PITCH", "YAW"),
        help="camera pose in the vehicle frame (m, rad; tf2 rpy) for ground positions",
    )
    parser.set_defaults(func=run)


def list_images(paths: list[Path]) -> list[Path]:
    """Expand folders (sorted, non-recursive) into image files; keep files as given.

    :raises InputError: a path that does not exist, is no regular file (a folder named
        ``x.png`` inside a folder is skipped), or no image at all.
    """
    images: list[Path] = []
    for path in paths:
        if path.is_dir():
            images += sorted(
                p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
        elif path.is_file():
            images.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    if not images:
        raise InputError(f"no images found in {[str(p) for p in paths]}")
    return images


def read_rgb(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB.

    PNG and JPEG sizes are read from the header first, so an image beyond ``max_pixels``
    is refused before it is decoded. EXIF orientation is ignored, as in the node: a
    camera frame is used as its pixels are stored, not turned like a photo.

    :raises InputError: unreadable, not an image, too large or corrupt.
    """
    try:
        stream = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror})") from error
    if stream[:8].startswith((b"\x89PNG", b"\xff\xd8")):
        try:
            _, height, width = compressed_size(stream)
            check_size(height, width, max_pixels)
        except InputError as error:
            raise InputError(f"{path}: {error}") from error
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    bgr = cv2.imdecode(np.frombuffer(stream, np.uint8), flags)
    if bgr is None:
        raise InputError(f"{path}: not a readable image")
    try:
        check_size(bgr.shape[0], bgr.shape[1], max_pixels)
    except InputError as error:
        raise InputError(f"{path}: {error}") from error
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_png(path: Path, image: np.ndarray) -> None:
    """Write a PNG under a temporary name, renamed when complete.

    :raises OutputError: OpenCV cannot encode it, or the disk is full / not writable.
    """
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OutputError(f"{path}: OpenCV could not encode a {image.shape} {image.dtype} PNG")
    write_file(path, encoded.tobytes())


def write_file(path: Path, content: bytes) -> None:
    """Write ``content`` under a temporary name, renamed when complete.

    :raises OutputError: the disk is full or the folder not writable.
    """
    try:
        atomic_write_bytes(path, content)
    except OSError as error:
        raise OutputError(f"{path}: cannot write ({error.strerror or error})") from error


def object_layer(args: argparse.Namespace) -> ObjectLayer:
    """The object layer of ``--camera-info``/``--mount`` (positions need both).

    :raises ConfigError: an unreadable calibration, or only one of the two.
    """
    if (args.camera_info is None) != (args.mount is None):
        raise ConfigError("ground positions need both --camera-info and --mount")
    mount = CameraMount(*args.mount) if args.mount is not None else None
    layer = ObjectLayer(ObjectSettings(), mount)
    if args.camera_info is not None:
        try:
            layer.set_camera(load_camera_info(args.camera_info))
        except CameraInfoError as error:
            raise ConfigError(f"--camera-info {args.camera_info}: {error}") from error
    return layer


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    config = config_from_args(args, model_from_args(args))  # bad settings: before any work
    layer = object_layer(args)
    images = list_images(args.images)
    if args.out.exists() and not args.out.is_dir():
        raise OutputError(f"--out {args.out} exists and is not a folder")
    args.out.mkdir(parents=True, exist_ok=True)
    with detector_from_args(args, config) as detector:
        for path in tqdm(images, desc="detect", unit="img"):
            result = detector.detect(
                read_rgb(path), outputs=("labels_color", "overlay"), road_region=True
            )
            if result.labels_color is None or result.overlay is None:
                raise RuntimeError("the Detector left out the requested labels_color/overlay")
            stem = args.out / path.stem
            low, high = score_display_range(result.score, detector.config.threshold)
            write_png(Path(f"{stem}_labels.png"), result.labels)
            write_png(Path(f"{stem}_labels_color.png"), result.labels_color[..., ::-1])
            write_png(Path(f"{stem}_score.png"), heat_colors(result.score, low, high)[..., ::-1])
            write_png(Path(f"{stem}_mask.png"), result.mask.astype(np.uint8) * 255)
            write_png(Path(f"{stem}_overlay.png"), result.overlay[..., ::-1])
            layer.reset()  # separate images: no tracks across them
            frame = layer.process(result.mask, result.score, result.road_region, 0)
            for line in frame.warnings:
                LOGGER.warning("%s: %s", path, line)
            document = {
                "image": path.name,
                "height": result.mask.shape[0],
                "width": result.mask.shape[1],
                "objects": [item.to_dict() for item in frame.objects],
            }
            write_file(Path(f"{stem}_objects.json"), json.dumps(document, indent=1).encode())
            if args.save_raw:
                buffer = io.BytesIO()
                np.save(buffer, result.score)
                write_file(Path(f"{stem}_score.npy"), buffer.getvalue())
    print(f"wrote {len(images)} × 5 images and objects JSON to {args.out}")
    return 0
