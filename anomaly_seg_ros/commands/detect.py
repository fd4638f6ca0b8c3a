"""``anomaly-seg detect``: run the Detector on image files and write PNGs, and each image's
anomaly objects as JSON (``<stem>_objects.json``; ground positions with ``--camera-info``
and ``--mount``)."""

from __future__ import annotations

import argparse
import io
import json
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from anomaly_seg_ros.atomic import atomic_write_files
from anomaly_seg_ros.commands.options import (
    add_detector_options,
    config_from_args,
    detector_from_args,
    model_from_args,
)
from anomaly_seg_ros.errors import ConfigError, InputError, OutputError
from anomaly_seg_ros.io.image_files import read_image_file
from anomaly_seg_ros.objects import (
    CameraInfoError,
    CameraMount,
    ObjectLayer,
    ObjectSettings,
)
from anomaly_seg_ros.objects.camera import load_camera_info
from anomaly_seg_ros.pipeline.visualize import heat_colors, score_display_range

if TYPE_CHECKING:
    from anomaly_seg_ros.detector import Result

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


def output_stems(images: list[Path], out: Path) -> list[Path]:
    """Where each image's outputs go: ``out/<stem>``, the input's file name without suffix.

    :raises InputError: two inputs with the same stem (``a/x.png`` and ``b/x.png``, or
        ``x.png`` and ``x.jpg``) would write the same files; nothing has been run.
    """
    seen: dict[str, Path] = {}
    for path in images:
        other = seen.setdefault(path.stem, path)
        if other != path:
            raise InputError(
                f"{other} and {path} would both write {out / path.stem}_*.png; "
                "detect them in separate runs (--out) or rename one"
            )
    return [out / path.stem for path in images]


def check_writable(out: Path) -> None:
    """Create ``out`` and make sure files can be written there, before the model loads.

    :raises OutputError: ``out`` is a file, cannot be created, or is not writable.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise OutputError(
            f"--out {out}: cannot write there ({error.strerror or error})"
        ) from error


def png_bytes(path: Path, image: np.ndarray) -> bytes:
    """``image`` encoded as PNG.

    :raises OutputError: OpenCV cannot encode it.
    """
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OutputError(f"{path}: OpenCV could not encode a {image.shape} {image.dtype} PNG")
    return encoded.tobytes()


def frame_files(stem: Path, result: Result, threshold: float, save_raw: bool) -> dict[Path, bytes]:
    """The encoded output files of one image: labels, colours, score, mask, overlay (+ .npy).

    :raises OutputError: an image OpenCV cannot encode.
    """
    if result.labels_color is None or result.overlay is None:
        raise RuntimeError("the Detector left out the requested labels_color/overlay")
    low, high = score_display_range(result.score, threshold)
    images = {
        "labels": result.labels,
        "labels_color": result.labels_color[..., ::-1],
        "score": heat_colors(result.score, low, high)[..., ::-1],
        "mask": result.mask.astype(np.uint8) * 255,
        "overlay": result.overlay[..., ::-1],
    }
    files = {
        Path(f"{stem}_{name}.png"): png_bytes(Path(f"{stem}_{name}.png"), image)
        for name, image in images.items()
    }
    if save_raw:
        buffer = io.BytesIO()
        np.save(buffer, result.score)
        files[Path(f"{stem}_score.npy")] = buffer.getvalue()
    return files


def write_frame(files: dict[Path, bytes]) -> None:
    """Write one image's files so that all of them appear or none.

    :raises OutputError: the disk is full or the folder not writable (nothing was kept).
    """
    try:
        atomic_write_files(files)
    except OSError as error:
        first = next(iter(files))
        raise OutputError(
            f"{first.parent}: cannot write {first.name} and the files beside it "
            f"({error.strerror or error}); none of them was kept"
        ) from error


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
    stems = output_stems(images, args.out)
    check_writable(args.out)
    failed: list[Path] = []
    with detector_from_args(args, config) as detector:
        for path, stem in tqdm(list(zip(images, stems)), desc="detect", unit="img"):
            try:
                rgb = read_image_file(path)
            except InputError as error:  # one bad file: say so, go on with the others
                LOGGER.error("%s", error)
                failed.append(path)
                continue
            result = detector.detect(rgb, outputs=("labels_color", "overlay"), road_region=True)
            files = frame_files(stem, result, detector.config.threshold, args.save_raw)
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
            files[Path(f"{stem}_objects.json")] = json.dumps(document, indent=1).encode()
            write_frame(files)
    done = len(images) - len(failed)
    print(f"wrote {done} × 5 images and objects JSON to {args.out}")
    if failed:
        LOGGER.error(
            "%d of %d images not processed (unreadable or corrupt): %s",
            len(failed),
            len(images),
            ", ".join(str(path) for path in failed),
        )
        return 1
    return 0
