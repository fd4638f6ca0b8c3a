"""Readers for anomaly-segmentation benchmarks in their published folder layouts.

* ``processed`` — Fishyscapes Lost & Found val, Fishyscapes Static and Road Anomaly as
  commonly redistributed (e.g. by PEBAL): ``ROOT/original/<name>.{png,jpg}`` and
  ``ROOT/labels/<name>.png``.
* ``smiyc`` — Segment-Me-If-You-Can AnomalyTrack / ObstacleTrack:
  ``ROOT/images/<name>.{jpg,png,webp}`` and
  ``ROOT/labels_masks/<name>_labels_semantic.png``.

Labels are single-channel: 0 = in-distribution, 1 = anomaly (obstacle), 255 = void.
Frames are sorted by name, so every run visits them in the same order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from anomaly_seg_ros.errors import InputError

LOGGER = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")

#: layout name → (image folder, label folder, label file suffix replacing the extension)
LAYOUTS = {
    "processed": ("original", "labels", ".png"),
    "smiyc": ("images", "labels_masks", "_labels_semantic.png"),
}

_LAYOUT_HELP = (
    "expected ROOT/original/ + ROOT/labels/ (Fishyscapes, Road Anomaly: 'processed') or "
    "ROOT/images/ + ROOT/labels_masks/*_labels_semantic.png (Segment-Me-If-You-Can: 'smiyc')"
)


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB image from a PNG/JPEG/WebP file.

    :raises InputError: the file is missing or not a readable image.
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read image {path}; is it a PNG/JPEG/WebP file?")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_anomaly_label(path: Path) -> np.ndarray:
    """(H, W) uint8 label map with values in {0, 1, 255}.

    :raises InputError: unreadable, not single-channel 8-bit, or other values present.
    """
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise InputError(f"cannot read label {path}")
    if label.ndim != 2 or label.dtype != np.uint8:
        raise InputError(
            f"label {path} is {label.dtype} with shape {label.shape}; anomaly labels must be "
            "single-channel 8-bit (0 = in-distribution, 1 = anomaly, 255 = void)"
        )
    unexpected = np.setdiff1d(np.unique(label), (0, 1, 255))
    if unexpected.size:
        raise InputError(
            f"label {path} has values {unexpected.tolist()}; anomaly labels must be 0 "
            "(in-distribution), 1 (anomaly) or 255 (void): convert the dataset to that encoding"
        )
    return label


@dataclass(frozen=True)
class AnomalyFrame:
    """One image of an anomaly dataset and its label file (None when unlabelled)."""

    name: str
    image_path: Path
    label_path: Path | None

    def load_image(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB."""
        return read_rgb(self.image_path)

    def load_label(self) -> np.ndarray:
        """(H, W) uint8, 0/1/255.

        :raises InputError: the frame has no label, or the label is invalid.
        """
        if self.label_path is None:
            raise InputError(f"frame {self.name} has no label file (unlabelled test split?)")
        return read_anomaly_label(self.label_path)


class AnomalyDataset(Sequence[AnomalyFrame]):
    """The frames of one dataset folder, sorted by name.

    :param root: the dataset folder (the one holding ``original/`` or ``images/``).
    :param layout: ``processed``, ``smiyc`` or ``auto`` (by the folders present).
    :param allow_unlabelled: accept images without a label file (their ``label_path`` is
        None); otherwise a missing label is an error.
    :raises InputError: unknown layout, folders missing, no images, missing labels.
    """

    def __init__(
        self, root: str | Path, layout: str = "auto", allow_unlabelled: bool = False
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"dataset folder {self.root} does not exist; {_LAYOUT_HELP}")
        self.layout = detect_layout(self.root) if layout == "auto" else layout
        if self.layout not in LAYOUTS:
            raise InputError(f"unknown layout {layout!r}; valid: auto, {', '.join(LAYOUTS)}")
        self.name = self.root.name
        self.frames = self._find_frames(allow_unlabelled)

    def _find_frames(self, allow_unlabelled: bool) -> list[AnomalyFrame]:
        image_folder, label_folder, label_suffix = LAYOUTS[self.layout]
        image_dir, label_dir = self.root / image_folder, self.root / label_folder
        for folder in (image_dir,) if allow_unlabelled else (image_dir, label_dir):
            if not folder.is_dir():
                raise InputError(f"{folder} is missing for layout {self.layout!r}; {_LAYOUT_HELP}")
        images = sorted(
            path for path in image_dir.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES
        )
        if not images:
            raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {image_dir}")
        frames, unlabelled = [], []
        for image in images:
            label = label_dir / f"{image.stem}{label_suffix}"
            if not label.is_file():
                unlabelled.append(image.name)
            frames.append(AnomalyFrame(image.stem, image, label if label.is_file() else None))
        if unlabelled and not allow_unlabelled:
            raise InputError(
                f"{len(unlabelled)} of {len(images)} images in {image_dir} have no label in "
                f"{label_dir} (expected <name>{label_suffix}), e.g. {unlabelled[:3]}"
            )
        if unlabelled:
            LOGGER.warning("%d images in %s have no label", len(unlabelled), image_dir)
        return frames

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> AnomalyFrame:  # type: ignore[override]
        return self.frames[index]

    def __iter__(self) -> Iterator[AnomalyFrame]:
        return iter(self.frames)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(RGB image, label) of frame ``index``, checked to have the same size.

        :raises InputError: unreadable files or image and label sizes differ.
        """
        frame = self.frames[index]
        image, label = frame.load_image(), frame.load_label()
        if image.shape[:2] != label.shape:
            raise InputError(
                f"{frame.image_path} is {image.shape[:2]} but its label {frame.label_path} is "
                f"{label.shape}; image and label must have the same size"
            )
        return image, label


def detect_layout(root: Path) -> str:
    """``processed`` or ``smiyc``, from the folders under ``root``.

    :raises InputError: neither layout's image folder exists.
    """
    for layout, (image_folder, _, _) in LAYOUTS.items():
        if (root / image_folder).is_dir():
            return layout
    present = sorted(path.name for path in root.iterdir() if path.is_dir())[:10]
    raise InputError(f"{root} is not an anomaly dataset (sub-folders {present}); {_LAYOUT_HELP}")
