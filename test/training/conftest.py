"""Shared fixture of the fine-tuning tests: a small real COCO-format dataset on disk.

The images are PNGs with flat-coloured shapes; ``instances_fixture.json`` has polygon and
RLE segmentations, one crowd region, a Cityscapes-overlapping class and one image that is too
small, so each rule of the subset builder has a case that it must reject.
"""

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils


@dataclass
class CocoFixture:
    annotations: Path
    images: Path
    kept_ids: set[int]  # annotation ids the default rules must keep
    colours: dict[int, tuple[int, int, int]]  # RGB fill of each kept object


CATEGORIES = ["dog", "kite", "sheep", "person", "cat", "bear", "chair", "bottle", "giraffe"]


def _polygon(points: list[tuple[int, int]]) -> list[list[float]]:
    return [[float(v) for point in points for v in point]]


def _box(x: int, y: int, w: int, h: int) -> list[tuple[int, int]]:
    return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]


def _write_coco(root: Path) -> CocoFixture:
    images_dir = root / "train"
    images_dir.mkdir(parents=True)
    cat_id = {name: index + 1 for index, name in enumerate(CATEGORIES)}
    images, annotations = [], []
    kept: set[int] = set()
    colours: dict[int, tuple[int, int, int]] = {}

    def add_image(image_id: int, height: int, width: int, objects: list[dict]) -> None:
        canvas = np.full((height, width, 3), 90, np.uint8)
        for obj in objects:
            colour = obj.get("colour", (200, 40, 40))
            for polygon in obj["polygons"]:
                cv2.fillPoly(canvas, [np.array(polygon, np.int32)], colour)
            segmentation = [_polygon(polygon)[0] for polygon in obj["polygons"]]
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
            ann = {
                "id": obj["id"],
                "image_id": image_id,
                "category_id": cat_id[obj["name"]],
                "segmentation": segmentation,
                "area": float(mask_utils.area(rle)),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                "iscrowd": 0,
            }
            if obj.get("crowd"):
                rle["counts"] = rle["counts"].decode("ascii")
                ann.update(segmentation=rle, iscrowd=1)
            annotations.append(ann)
            if obj.get("keep"):
                kept.add(obj["id"])
                colours[obj["id"]] = colour
        name = f"{image_id:012d}.png"
        cv2.imwrite(str(images_dir / name), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
        images.append({"id": image_id, "file_name": name, "height": height, "width": width})

    ellipse = cv2.ellipse2Poly((200, 250), (80, 50), 0, 0, 360, 10)
    add_image(
        1,
        500,
        640,
        [
            {
                "id": 11,
                "name": "dog",
                "polygons": [ellipse.tolist()],
                "keep": True,
                "colour": (220, 30, 30),
            },
            {"id": 12, "name": "kite", "polygons": [_box(500, 60, 20, 20)]},  # 400 px < min area
            {"id": 13, "name": "sheep", "polygons": [_box(420, 300, 120, 100)], "crowd": True},
        ],
    )
    add_image(
        2,
        520,
        600,
        [  # contains a person: the whole image is dropped
            {"id": 21, "name": "cat", "polygons": [_box(100, 100, 100, 100)]},
            {"id": 22, "name": "person", "polygons": [_box(350, 100, 60, 160)]},
        ],
    )
    add_image(
        3,
        400,
        640,
        [  # shorter side 400 < 480
            {"id": 31, "name": "cat", "polygons": [_box(100, 100, 100, 100)]},
        ],
    )
    add_image(
        4,
        480,
        640,
        [
            {"id": 41, "name": "bear", "polygons": [_box(60, 60, 150, 150)]},
            {
                "id": 42,
                "name": "chair",
                "polygons": [_box(150, 150, 120, 120)],  # overlaps bear
                "colour": (20, 200, 20),
            },
            {"id": 43, "name": "dog", "polygons": [_box(560, 300, 80, 80)]},  # cut by the border
            {
                "id": 44,
                "name": "giraffe",  # thin diagonal: fills < 30 % of its box
                "polygons": [[(300, 300), (310, 300), (460, 450), (450, 450)]],
            },
            {
                "id": 45,
                "name": "bear",  # two pieces of similar size: occluded
                "polygons": [_box(400, 40, 40, 40), _box(470, 40, 40, 40)],
            },
        ],
    )
    add_image(
        5,
        480,
        480,
        [
            {
                "id": 51,
                "name": "bottle",
                "polygons": [_box(200, 120, 50, 140)],
                "keep": True,
                "colour": (30, 60, 230),
            },
            {
                "id": 52,
                "name": "cat",
                "polygons": [_box(40, 330, 90, 70)],
                "keep": True,
                "colour": (250, 200, 10),
            },
        ],
    )
    document = {
        "info": {"description": "anomaly_seg_ros test fixture"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": n, "supercategory": "x"} for n, i in cat_id.items()],
    }
    annotation_path = root / "annotations" / "instances_fixture.json"
    annotation_path.parent.mkdir()
    annotation_path.write_text(json.dumps(document))
    return CocoFixture(annotation_path, images_dir, kept, colours)


@pytest.fixture(scope="session")
def coco_fixture(tmp_path_factory: pytest.TempPathFactory) -> CocoFixture:
    return _write_coco(tmp_path_factory.mktemp("coco"))


@pytest.fixture(scope="session")
def object_bank_dir(coco_fixture: CocoFixture, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.coco_subset import build_object_bank

    out = tmp_path_factory.mktemp("bank")
    with warnings.catch_warnings():  # pycocotools' C extension predates NumPy 2's copy=
        warnings.simplefilter("ignore", DeprecationWarning)
        build_object_bank(coco_fixture.annotations, coco_fixture.images, out)
    return out
