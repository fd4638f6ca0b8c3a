"""Reader of the Cityscapes folder layout (the real dataset and the synthetic world).

``ROOT/leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png`` with its label
``ROOT/gtFine/{split}/{city}/{stem}_gtFine_labelIds.png`` (official label ids), converted
to the 19 train ids (255 = ignore) through ``cityscapesscripts``. Numpy and OpenCV only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from anomaly_seg_ros.datasets.anomaly import read_rgb
from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.io.image_files import read_image_file
from anomaly_seg_ros.model.classes import CITYSCAPES_CLASSES

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
SPLITS = ("train", "val", "test")
#: Train id of pixels the loss and the metrics ignore.
IGNORE_INDEX = 255


@lru_cache(maxsize=1)
def label_id_to_train_id() -> np.ndarray:
    """(256,) uint8 lookup table: official label id -> train id (255 for void ids)."""
    from cityscapesscripts.helpers.labels import labels  # type: ignore[import-untyped]

    table = np.full(256, IGNORE_INDEX, np.uint8)
    for label in labels:
        if 0 <= label.id < 256 and 0 <= label.trainId < IGNORE_INDEX:
            table[label.id] = label.trainId
    table.flags.writeable = False
    return table


def to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map an (H, W) uint8 ``labelIds`` image to (H, W) uint8 train ids."""
    train_ids: np.ndarray = label_id_to_train_id()[label_ids]
    return train_ids


@dataclass(frozen=True)
class CityscapesSample:
    """Paths of one annotated frame."""

    city: str
    stem: str
    image_path: Path
    label_path: Path


def list_cityscapes(
    root: str | Path, split: str = "train", cities: tuple[str, ...] | None = None
) -> list[CityscapesSample]:
    """All image/label pairs of ``split``, sorted by city and name.

    :param root: folder holding ``leftImg8bit/`` and ``gtFine/``.
    :param split: "train", "val" or "test".
    :param cities: keep only these cities (folder names); None keeps all.
    :raises InputError: wrong layout, unknown split or city, missing labels, no frames.
    """
    root = Path(root)
    if split not in SPLITS:
        raise InputError(f"unknown Cityscapes split {split!r}; valid: {', '.join(SPLITS)}")
    image_dir, label_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise InputError(
                f"{folder} not found: expected the Cityscapes layout ROOT/leftImg8bit/{split}/"
                f"<city>/*{IMAGE_SUFFIX} and ROOT/gtFine/{split}/<city>/*{LABEL_SUFFIX} "
                f"(ROOT = {root})"
            )
    available = sorted(path.name for path in image_dir.iterdir() if path.is_dir())
    chosen = available if cities is None else list(cities)
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise InputError(f"cities {unknown} not in {image_dir}; available: {', '.join(available)}")
    samples, missing = [], []
    for city in chosen:
        for image_path in sorted((image_dir / city).glob(f"*{IMAGE_SUFFIX}")):
            stem = image_path.name[: -len(IMAGE_SUFFIX)]
            label_path = label_dir / city / f"{stem}{LABEL_SUFFIX}"
            if not label_path.is_file():
                missing.append(label_path)
                continue
            samples.append(CityscapesSample(city, stem, image_path, label_path))
    if missing:
        raise InputError(
            f"{len(missing)} image(s) in {image_dir} have no label, e.g. {missing[0]}; "
            "download gtFine for this split or remove the images"
        )
    if not samples:
        raise InputError(f"no *{IMAGE_SUFFIX} images under {image_dir} (cities: {chosen})")
    return samples


def read_train_ids(path: Path) -> np.ndarray:
    """(H, W) uint8 train ids from a ``gtFine_labelIds`` file.

    :raises InputError: unreadable or not a single-channel 8-bit image.
    """
    label = read_image_file(path, unchanged=True)
    if label.ndim != 2 or label.dtype != np.uint8:
        raise InputError(
            f"{path} is not a single-channel 8-bit labelIds image; Cityscapes labels are "
            f"*{LABEL_SUFFIX} files with official label ids"
        )
    return to_train_ids(label)


class CityscapesDataset:
    """Indexable Cityscapes split: ``dataset[i] -> (rgb (H, W, 3) uint8, train ids (H, W) uint8)``.

    :param root: folder holding ``leftImg8bit/`` and ``gtFine/``.
    :param split: "train", "val" or "test".
    :param cities: optional subset of cities.
    :raises InputError: see :func:`list_cityscapes`.
    """

    def __init__(
        self, root: str | Path, split: str = "train", cities: tuple[str, ...] | None = None
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.samples = tuple(list_cityscapes(root, split, cities))
        self.class_names = CITYSCAPES_CLASSES

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        sample = self.samples[index]
        image = read_rgb(sample.image_path)
        train_ids = read_train_ids(sample.label_path)
        if image.shape[:2] != train_ids.shape:
            raise InputError(
                f"{sample.image_path} is {image.shape[:2]} but its label is {train_ids.shape}"
            )
        return image, train_ids
