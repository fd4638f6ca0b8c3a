"""Write the synthetic world in the layouts of the real datasets.

* Cityscapes: ``leftImg8bit/{split}/{city}/{city}_{seq:06d}_{frame:06d}_leftImg8bit.png``
  and ``gtFine/{split}/{city}/{city}_{seq:06d}_{frame:06d}_gtFine_labelIds.png``
  (official label ids, 8-bit single channel);
* Fishyscapes processed layout: ``original/{name}.png``, ``labels/{name}.png`` with
  0 = in-distribution, 1 = anomaly, 255 = void;
* COCO: ``train/{image_id:012d}.jpg`` and ``annotations/instances_train.json`` with
  polygon segmentations.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from anomaly_seg_ros.datasets.cityscapes import to_train_ids
from demo.synthetic.ood_bank import CATEGORIES, mask_polygons
from demo.synthetic.scene import Frame

#: Cities per split (names only; every city samples the same world).
CITIES = {"train": ("alphaburg", "betastadt", "gammadorf"), "val": ("deltaheim",)}
#: Cityscapes annotates the 20th frame of each 30-frame snippet.
ANNOTATED_FRAME = 19


def write_png(path: Path, array: np.ndarray) -> None:
    """Write an RGB (H, W, 3) or single-channel (H, W) uint8 array as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 else array
    if not cv2.imwrite(str(path), data):
        raise OSError(f"could not write {path}")


def cityscapes_name(split: str, index: int) -> tuple[str, str]:
    """(city, file stem) of the ``index``-th frame of ``split``."""
    cities = CITIES[split]
    city = cities[index % len(cities)]
    return city, f"{city}_{index // len(cities):06d}_{ANNOTATED_FRAME:06d}"


def write_cityscapes_frame(root: Path, split: str, index: int, frame: Frame) -> Path:
    """Write one frame as Cityscapes image + ``gtFine_labelIds``; returns the image path."""
    city, stem = cityscapes_name(split, index)
    image_path = root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"
    write_png(image_path, frame.image)
    write_png(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", frame.label_ids)
    return image_path


def fishyscapes_label(frame: Frame) -> np.ndarray:
    """(H, W) uint8: 1 on anomalies, 255 where the Cityscapes label is void, 0 elsewhere."""
    label = np.where(to_train_ids(frame.label_ids) == 255, 255, 0).astype(np.uint8)
    label[frame.anomaly] = 1
    return label


def write_anomaly_frame(root: Path, index: int, frame: Frame) -> Path:
    """Write one test-anomaly frame in the Fishyscapes processed layout."""
    name = f"{index:04d}.png"
    write_png(root / "original" / name, frame.image)
    write_png(root / "labels" / name, fishyscapes_label(frame))
    return root / "original" / name


class CocoWriter:
    """Collect bank images and instance masks; :meth:`close` writes the annotation file.

    :param root: the bank's root folder (``train/`` and ``annotations/`` go inside).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images: list[dict[str, object]] = []
        self.annotations: list[dict[str, object]] = []

    def add(self, image: np.ndarray, objects: list[tuple[int, np.ndarray]]) -> None:
        """Add one image with its ``(category_index, mask)`` objects."""
        image_id = len(self.images) + 1
        file_name = f"{image_id:012d}.jpg"
        path = self.root / "train" / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(
            str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
        height, width = image.shape[:2]
        self.images.append(
            {"id": image_id, "file_name": file_name, "height": height, "width": width}
        )
        for category, mask in objects:
            polygons = mask_polygons(mask)
            if not polygons:
                continue
            rows, cols = np.nonzero(mask)
            x0, y0 = int(cols.min()), int(rows.min())
            self.annotations.append(
                {
                    "id": len(self.annotations) + 1,
                    "image_id": image_id,
                    "category_id": category + 1,
                    "segmentation": polygons,
                    "area": float(mask.sum()),
                    "bbox": [x0, y0, int(cols.max()) - x0 + 1, int(rows.max()) - y0 + 1],
                    "iscrowd": 0,
                }
            )

    def close(self) -> Path:
        """Write ``annotations/instances_train.json`` and return its path."""
        path = self.root / "annotations" / "instances_train.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "info": {"description": "anomaly_seg_ros synthetic OoD object bank (COCO stand-in)"},
            "images": self.images,
            "annotations": self.annotations,
            "categories": [
                {"id": index + 1, "name": name, "supercategory": "synthetic"}
                for index, name in enumerate(CATEGORIES)
            ],
        }
        path.write_text(json.dumps(data))
        return path
