"""Readers for anomaly-segmentation benchmarks in their published folder layouts.

* ``processed`` — Fishyscapes Lost & Found val, Fishyscapes Static and Road Anomaly as
  commonly redistributed (e.g. by PEBAL): ``ROOT/original/<name>.{png,jpg}`` and
  ``ROOT/labels/<name>.png``.
* ``smiyc`` — Segment-Me-If-You-Can ``dataset_AnomalyTrack`` / ``dataset_ObstacleTrack``:
  ``ROOT/images/<name>.{jpg,webp}`` and ``ROOT/labels_masks/<name>_labels_semantic.png``.
  Only the validation frames have labels (AnomalyTrack 10, ObstacleTrack 30); the other
  images are the benchmark's held-out test split and are left out.
* ``validation`` — the common validation layout (RoadAnomaly21, RoadObstacle21,
  FS_LostFound_full, fs_static, RoadAnomaly as passed around for evaluation scripts):
  ``ROOT/images/<name>.{png,jpg,webp}`` and ``ROOT/labels_masks/<name>.png``.
* ``road_anomaly`` — the original Road Anomaly release:
  ``ROOT/frames/<name>.{jpg,webp}`` and ``ROOT/frames/<name>.labels/labels_semantic.png``.

Labels are decoded to one encoding: 0 = in-distribution, 1 = anomaly (obstacle), 255 =
void. Road Anomaly's original labels mark anomalies with 2, also in its copies in the
``validation`` layout; there a frame holding both 1 and 2 is refused (which one would be
the anomaly is not known). Frames are sorted by name, so every run visits them in the
same order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.io.image_files import read_image_file

LOGGER = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
#: The decoded label values.
IN_DISTRIBUTION, ANOMALY, VOID = 0, 1, 255


@dataclass(frozen=True)
class Layout:
    """One published folder layout and its label encoding.

    :param name: the ``--layout`` name.
    :param datasets: which datasets come in this layout (for messages and docs).
    :param image_folder: folder of the images under the dataset root.
    :param label_template: label path under the root, ``{stem}`` = the image's stem.
    :param anomaly_values: label values that mark anomalies (decoded to 1).
    :param held_out_without_label: images without a label are a held-out test split
        (left out), not an error.
    """

    name: str
    datasets: str
    image_folder: str
    label_template: str
    anomaly_values: tuple[int, ...] = (ANOMALY,)
    held_out_without_label: bool = False

    def label_path(self, root: Path, stem: str) -> Path:
        """Where the label of image ``stem`` lies."""
        return root / self.label_template.format(stem=stem)

    @property
    def label_folder(self) -> str:
        """The folder holding the label files (or their sub-folders)."""
        return self.label_template.split("/")[0]

    def describe(self) -> str:
        """``name`` (datasets): images/ + labels_masks/<stem>_labels_semantic.png."""
        values = " or ".join(str(value) for value in self.anomaly_values)
        return (
            f"{self.name!r} ({self.datasets}): {self.image_folder}/<stem>.<image> + "
            f"{self.label_template.format(stem='<stem>')}, anomaly = {values}"
        )


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "processed",
            "Fishyscapes Lost & Found / Static, Road Anomaly as redistributed by PEBAL",
            "original",
            "labels/{stem}.png",
        ),
        Layout(
            "smiyc",
            "Segment-Me-If-You-Can dataset_AnomalyTrack / dataset_ObstacleTrack",
            "images",
            "labels_masks/{stem}_labels_semantic.png",
            held_out_without_label=True,
        ),
        Layout(
            "validation",
            "the common validation copies: RoadAnomaly21, RoadObstacle21, "
            "FS_LostFound_full, fs_static, RoadAnomaly",
            "images",
            "labels_masks/{stem}.png",
            anomaly_values=(ANOMALY, 2),
        ),
        Layout(
            "road_anomaly",
            "Road Anomaly, original release",
            "frames",
            "frames/{stem}.labels/labels_semantic.png",
            anomaly_values=(2,),
        ),
    )
}


def _layout_help() -> str:
    return "; ".join(layout.describe() for layout in LAYOUTS.values())


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB image from a PNG/JPEG/WebP file.

    :raises InputError: the file is missing or not a readable image.
    """
    return read_image_file(path)


def read_anomaly_label(path: Path, anomaly_values: Sequence[int] = (ANOMALY,)) -> np.ndarray:
    """(H, W) uint8 label map decoded to 0 = in-distribution, 1 = anomaly, 255 = void.

    A grey label stored with three equal colour channels (or a palette of greys) is read
    as its one channel.

    :param anomaly_values: the values that mark anomalies in this file's encoding.
    :raises InputError: unreadable, not one 8-bit channel, values outside
        {0, 255, ``anomaly_values``}, or two different anomaly values in one frame.
    """
    label = read_image_file(path, unchanged=True)
    if label.ndim == 3 and label.dtype == np.uint8 and label.shape[2] in (3, 4):
        colour = label[..., :3]
        if np.array_equal(colour[..., 0], colour[..., 1]) and np.array_equal(
            colour[..., 0], colour[..., 2]
        ):
            label = np.ascontiguousarray(colour[..., 0])
    if label.ndim != 2 or label.dtype != np.uint8:
        raise InputError(
            f"label {path} is {label.dtype} with shape {label.shape}; anomaly labels must be "
            "single-channel 8-bit (0 = in-distribution, 1 = anomaly, 255 = void)"
        )
    present = np.unique(label)
    allowed = (IN_DISTRIBUTION, VOID, *anomaly_values)
    unexpected = np.setdiff1d(present, allowed)
    if unexpected.size:
        hint = (
            " (2 marks anomalies in Road Anomaly's encoding: its layouts are 'validation' "
            "and 'road_anomaly', name one with --layout)"
            if 2 in unexpected.tolist() and 2 not in anomaly_values
            else ": convert the dataset to that encoding"
        )
        raise InputError(
            f"label {path} has values {unexpected.tolist()}; its layout allows "
            f"{sorted(allowed)} (0 in-distribution, {' or '.join(map(str, anomaly_values))} "
            f"anomaly, 255 void){hint}"
        )
    marked = [value for value in anomaly_values if value in present]
    if len(marked) > 1:
        raise InputError(
            f"label {path} holds both {marked[0]} and {marked[1]}; only one of them can mark "
            "anomalies: name the layout with --layout (see docs/evaluation.md)"
        )
    if marked and marked[0] != ANOMALY:
        label = np.where(label == marked[0], np.uint8(ANOMALY), label)
    return label


@dataclass(frozen=True)
class AnomalyFrame:
    """One image of an anomaly dataset and its label file (None when unlabelled)."""

    name: str
    image_path: Path
    label_path: Path | None
    anomaly_values: tuple[int, ...] = (ANOMALY,)

    def load_image(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB."""
        return read_rgb(self.image_path)

    def load_label(self) -> np.ndarray:
        """(H, W) uint8, 0/1/255.

        :raises InputError: the frame has no label, or the label is invalid.
        """
        if self.label_path is None:
            raise InputError(f"frame {self.name} has no label file (unlabelled test split?)")
        return read_anomaly_label(self.label_path, self.anomaly_values)


class AnomalyDataset(Sequence[AnomalyFrame]):
    """The frames of one dataset folder, sorted by name.

    :param root: the dataset folder (the one holding ``original/``, ``images/`` or
        ``frames/``).
    :param layout: a name of :data:`LAYOUTS`, or ``auto`` (:func:`detect_layout`).
    :param allow_unlabelled: keep images without a label file (their ``label_path`` is
        None); otherwise a missing label is an error, except in a layout whose unlabelled
        images are a held-out test split (SMIYC): those are left out and listed in
        :attr:`held_out`.
    :raises InputError: unknown or ambiguous layout, folders missing, no images, missing
        labels.
    """

    def __init__(
        self, root: str | Path, layout: str = "auto", allow_unlabelled: bool = False
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"dataset folder {self.root} does not exist; {_layout_help()}")
        name = detect_layout(self.root) if layout == "auto" else layout
        if name not in LAYOUTS:
            raise InputError(f"unknown layout {layout!r}; valid: auto, {', '.join(LAYOUTS)}")
        self.spec = LAYOUTS[name]
        self.layout = name
        self.name = self.root.name
        #: images without a label that the layout treats as a held-out test split
        self.held_out: list[str] = []
        self.frames = self._find_frames(allow_unlabelled)

    def _find_frames(self, allow_unlabelled: bool) -> list[AnomalyFrame]:
        spec = self.spec
        image_dir = self.root / spec.image_folder
        label_dir = self.root / spec.label_folder
        for folder in (image_dir, label_dir):
            if not folder.is_dir() and not (folder is label_dir and allow_unlabelled):
                raise InputError(
                    f"{folder} is missing for layout {spec.describe()}; use --layout to name "
                    f"another: {_layout_help()}"
                )
        images = _images_in(image_dir)
        if not images:
            raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {image_dir}")
        frames, unlabelled = [], []
        for image in images:
            label = spec.label_path(self.root, image.stem)
            if not label.is_file():
                unlabelled.append(image.name)
                if not allow_unlabelled:
                    continue
            frames.append(
                AnomalyFrame(
                    image.stem, image, label if label.is_file() else None, spec.anomaly_values
                )
            )
        expected = spec.label_template.format(stem="<name>")
        if unlabelled and not allow_unlabelled:
            if not spec.held_out_without_label:
                raise InputError(
                    f"{len(unlabelled)} of {len(images)} images in {image_dir} have no label "
                    f"(expected {self.root}/{expected}), e.g. {unlabelled[:3]}"
                )
            if not frames:
                raise InputError(
                    f"none of the {len(images)} images in {image_dir} has a label "
                    f"({expected}): only the held-out test split is here"
                )
            self.held_out = unlabelled
            LOGGER.info(
                "%s: %d labelled frames; %d images without a label (the held-out test split) "
                "left out",
                self.root,
                len(frames),
                len(unlabelled),
            )
        elif unlabelled:
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


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    )


def detect_layout(root: Path) -> str:
    """The layout of ``root`` from its folders and file names, never a guess.

    ``original/`` → ``processed``; ``frames/`` → ``road_anomaly``; ``images/`` →
    ``smiyc`` when its labels are named ``<stem>_labels_semantic.png``, ``validation``
    when ``<stem>.png``.

    :raises InputError: no layout fits, or more than one does (name it with ``--layout``).
    """
    candidates: dict[str, str] = {}
    if (root / "original").is_dir():
        candidates["processed"] = "original/ is present"
    if (root / "frames").is_dir():
        candidates["road_anomaly"] = "frames/ is present"
    if (root / "images").is_dir():
        stems = [path.stem for path in _images_in(root / "images")]
        matches = {
            name: sum(LAYOUTS[name].label_path(root, stem).is_file() for stem in stems)
            for name in ("smiyc", "validation")
        }
        found = [name for name, count in matches.items() if count]
        for name in found or list(matches):
            candidates[name] = (
                f"{matches[name]} of {len(stems)} images have a label "
                f"{LAYOUTS[name].label_template.format(stem='<stem>')}"
            )
    if len(candidates) == 1:
        return next(iter(candidates))
    if not candidates:
        present = sorted(path.name for path in root.iterdir() if path.is_dir())[:10]
        raise InputError(
            f"{root} is not an anomaly dataset (sub-folders {present}); expected one of "
            f"{_layout_help()}"
        )
    reasons = "; ".join(f"{name}: {why}" for name, why in candidates.items())
    raise InputError(
        f"the layout of {root} is ambiguous ({reasons}); name it with --layout "
        f"{'|'.join(candidates)}"
    )
