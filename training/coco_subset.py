"""COCO OoD subset builder: select whole, unoccluded non-driving objects, write an object bank.

Run once; training then reads small PNG cut-outs through :class:`ObjectBank` instead of
decoding the 450 MB ``instances_train2017.json`` in every worker::

    python -m training.coco_subset --annotations coco/annotations/instances_train2017.json \
        --images coco/train2017 --out data/coco_ood_bank

Bank layout: ``index.json`` (format ``anomaly_seg_ros/object_bank`` v1, the rules used and one
entry per object), ``objects/<ann_id>.png`` (RGB cut-out of the object's box) and
``masks/<ann_id>.png`` (uint8, 255 on the object).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from anomaly_seg_ros.errors import ConfigError, ModelError

LOGGER = logging.getLogger(__name__)

BANK_FORMAT = "anomaly_seg_ros/object_bank"
BANK_VERSION = 1

#: COCO classes that are (part of) Cityscapes classes; images containing any are dropped.
CITYSCAPES_OVERLAP = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "bus",
    "truck",
    "train",
    "traffic light",
    "stop sign",
)


@dataclass(frozen=True)
class SubsetRules:
    """Which COCO images and objects enter the bank.

    Image rules follow Meta-OoD / PEBAL (drop images with any Cityscapes-overlapping class,
    both sides >= 480 px). Object rules are ours: earlier work pasted all instances of an image
    and had no occlusion filter; the style-aligned AnomalyMix paper only says "non-occluded".

    :param excluded_categories: COCO category names whose presence drops the whole image.
    :param min_image_side: both image sides must be at least this (px).
    :param min_area: object mask area in px.
    :param min_box_fill: mask area / box area; thin or shredded masks fall below it.
    :param min_main_component: share of the mask in its largest connected part; an object
        cut in pieces by something in front of it falls below it.
    :param max_contact: share of the object's outline (a 3 px ring around the mask) covered by
        other instances' masks; occluded and occluding objects both touch another instance.
    :param border_margin: the box must stay this many px inside the image (not truncated).
    """

    excluded_categories: tuple[str, ...] = CITYSCAPES_OVERLAP
    min_image_side: int = 480
    min_area: int = 1000
    min_box_fill: float = 0.3
    min_main_component: float = 0.9
    max_contact: float = 0.15
    border_margin: int = 2


def _image_ok(coco: Any, image_id: int, excluded_ids: set[int], rules: SubsetRules) -> bool:
    info = coco.imgs[image_id]
    if min(int(info["height"]), int(info["width"])) < rules.min_image_side:
        return False
    annotations = coco.imgToAnns.get(image_id, [])
    return not any(ann["category_id"] in excluded_ids for ann in annotations)


def _object_ok(
    mask: np.ndarray, others: np.ndarray, ann: dict[str, Any], rules: SubsetRules
) -> bool:
    """Apply the object rules to one decoded (H, W) uint8 mask."""
    area = int(mask.sum())
    if ann.get("iscrowd", 0) or area < rules.min_area:
        return False
    x, y, w, h = cv2.boundingRect(mask)
    height, width = mask.shape
    margin = rules.border_margin
    if x < margin or y < margin or x + w > width - margin or y + h > height - margin:
        return False
    if area / max(w * h, 1) < rules.min_box_fill:
        return False
    count, components = cv2.connectedComponents(mask, connectivity=8)
    largest = np.bincount(components.ravel(), minlength=count)[1:].max()
    if largest / area < rules.min_main_component:
        return False
    ring = cv2.dilate(mask, np.ones((7, 7), np.uint8)) & ~mask.astype(bool)
    contact = float(others[ring.astype(bool)].mean()) if ring.any() else 0.0
    return contact <= rules.max_contact


def select_objects(coco: Any, rules: SubsetRules) -> list[tuple[dict[str, Any], np.ndarray]]:
    """Annotations passing the image and object rules, with their full-image masks.

    :param coco: a loaded ``pycocotools.coco.COCO``.
    :param rules: the selection rules.
    :return: [(annotation, (H, W) uint8 mask 0/1)], in image-id order.
    """
    names = {cat["id"]: cat["name"] for cat in coco.loadCats(coco.getCatIds())}
    excluded_ids = {cid for cid, name in names.items() if name in rules.excluded_categories}
    selected = []
    for image_id in sorted(coco.imgs):
        if not _image_ok(coco, image_id, excluded_ids, rules):
            continue
        annotations = coco.imgToAnns.get(image_id, [])
        masks = [coco.annToMask(ann).astype(np.uint8) for ann in annotations]
        for index, ann in enumerate(annotations):
            others = np.zeros_like(masks[index])
            for other_index, other in enumerate(masks):
                if other_index != index:
                    others |= other
            if _object_ok(masks[index], others, ann, rules):
                selected.append((ann, masks[index]))
    return selected


def build_object_bank(
    annotation_file: str | Path,
    image_dir: str | Path,
    out_dir: str | Path,
    rules: SubsetRules | None = None,
    limit: int | None = None,
) -> Path:
    """Select objects from a COCO-format dataset and write the bank.

    :param annotation_file: ``instances_*.json``.
    :param image_dir: folder holding the images named in ``file_name``.
    :param out_dir: bank folder (created; an existing index is overwritten).
    :param rules: selection rules (defaults: :class:`SubsetRules`).
    :param limit: keep at most this many objects (first in image-id order), for quick runs.
    :return: path of the written ``index.json``.
    :raises ModelError: an image named by the annotations cannot be read.
    """
    from pycocotools.coco import COCO  # deferred: only the builder needs pycocotools

    rules = rules or SubsetRules()
    coco = COCO(str(annotation_file))
    names = {cat["id"]: cat["name"] for cat in coco.loadCats(coco.getCatIds())}
    out = Path(out_dir)
    (out / "objects").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    entries = []
    for ann, mask in select_objects(coco, rules)[:limit]:
        image_path = Path(image_dir) / coco.imgs[ann["image_id"]]["file_name"]
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise ModelError(f"cannot read COCO image {image_path}; check --images")
        x, y, w, h = cv2.boundingRect(mask)  # the mask's box, not COCO's float bbox
        stem = f"{int(ann['id']):012d}.png"
        cv2.imwrite(str(out / "objects" / stem), image[y : y + h, x : x + w])
        cv2.imwrite(str(out / "masks" / stem), mask[y : y + h, x : x + w] * 255)
        entries.append(
            {
                "id": int(ann["id"]),
                "image_id": int(ann["image_id"]),
                "category": names[ann["category_id"]],
                "image": f"objects/{stem}",
                "mask": f"masks/{stem}",
                "bbox": [x, y, w, h],
                "area": int(mask.sum()),
            }
        )
    index = {
        "format": BANK_FORMAT,
        "version": BANK_VERSION,
        "source": str(annotation_file),
        "rules": asdict(rules),
        "objects": entries,
    }
    index_path = out / "index.json"
    index_path.write_text(json.dumps(index, indent=1) + "\n")
    LOGGER.info("object bank %s: %d objects", out, len(entries))
    return index_path


class ObjectBank:
    """Read access to a bank written by :func:`build_object_bank`.

    :param path: the bank folder or its ``index.json``.
    :param cache: keep decoded objects in memory (a bank of a few thousand small cut-outs fits).
    :raises ModelError: missing or foreign index, or an empty bank.
    """

    def __init__(self, path: str | Path, cache: bool = True) -> None:
        index_path = Path(path)
        if index_path.is_dir():
            index_path = index_path / "index.json"
        if not index_path.is_file():
            raise ModelError(
                f"object bank index {index_path} not found; build it with "
                "`python -m training.coco_subset`"
            )
        index = json.loads(index_path.read_text())
        if index.get("format") != BANK_FORMAT or index.get("version") != BANK_VERSION:
            raise ModelError(f"{index_path} is not a v{BANK_VERSION} {BANK_FORMAT} index")
        self.root = index_path.parent
        self.entries: list[dict[str, Any]] = list(index["objects"])
        if not self.entries:
            raise ModelError(f"object bank {index_path} is empty; relax the subset rules")
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.entries)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Object ``index`` as ((h, w, 3) uint8 RGB cut-out, (h, w) bool mask).

        :raises ModelError: a PNG of the bank is missing or unreadable.
        """
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        entry = self.entries[index]
        bgr = cv2.imread(str(self.root / entry["image"]), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(self.root / entry["mask"]), cv2.IMREAD_GRAYSCALE)
        if bgr is None or mask is None or bgr.shape[:2] != mask.shape:
            raise ModelError(f"object {entry['id']} of bank {self.root} is missing or corrupt")
        item = (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), mask > 127)
        if self._cache is not None:
            self._cache[index] = item
        return item


def main(argv: list[str] | None = None) -> int:
    """Command line: build a bank from a COCO-format dataset."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--annotations", required=True, help="instances_*.json")
    parser.add_argument("--images", required=True, help="image folder of that split")
    parser.add_argument("--out", required=True, help="bank folder to write")
    parser.add_argument("--min-image-side", type=int, default=SubsetRules.min_image_side)
    parser.add_argument("--min-area", type=int, default=SubsetRules.min_area)
    parser.add_argument("--min-box-fill", type=float, default=SubsetRules.min_box_fill)
    parser.add_argument("--max-contact", type=float, default=SubsetRules.max_contact)
    parser.add_argument(
        "--exclude",
        default=",".join(CITYSCAPES_OVERLAP),
        help="comma-separated category names whose images are dropped",
    )
    parser.add_argument("--limit", type=int, default=None, help="at most this many objects")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.min_image_side < 1 or args.min_area < 1:
        raise ConfigError("--min-image-side and --min-area must be positive")
    rules = SubsetRules(
        excluded_categories=tuple(name.strip() for name in args.exclude.split(",") if name),
        min_image_side=args.min_image_side,
        min_area=args.min_area,
        min_box_fill=args.min_box_fill,
        max_contact=args.max_contact,
    )
    build_object_bank(args.annotations, args.images, args.out, rules, args.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
