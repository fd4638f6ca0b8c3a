"""Cityscapes reader on a mini Cityscapes written by the synthetic world."""

import json
import shutil
import warnings

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import id2label

from anomaly_seg_ros.datasets.cityscapes import (
    CityscapesDataset,
    label_id_to_train_id,
    list_cityscapes,
    to_train_ids,
)
from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.model.classes import CITYSCAPES_CLASSES
from demo.synthetic.generate import main as generate_main


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    args = ["--out", str(out), "--train", "6", "--val", "2", "--anomaly", "2", "--ood-bank", "3"]
    assert (
        generate_main([*args, "--seed", "5", "--height", "64", "--width", "128", "--no-progress"])
        == 0
    )
    return out


def test_generator_writes_the_real_layouts(world_dir):
    images = sorted((world_dir / "cityscapes/leftImg8bit/train").glob("*/*_leftImg8bit.png"))
    labels = sorted((world_dir / "cityscapes/gtFine/train").glob("*/*_gtFine_labelIds.png"))
    assert len(images) == len(labels) == 6
    assert len({path.parent.name for path in images}) == 3  # three cities
    label = cv2.imread(str(labels[0]), cv2.IMREAD_UNCHANGED)
    assert label.dtype == np.uint8 and label.ndim == 2
    assert all(int(v) in id2label for v in np.unique(label))
    assert len(list((world_dir / "anomaly/original").glob("*.png"))) == 2
    assert len(list((world_dir / "anomaly/labels").glob("*.png"))) == 2
    manifest = json.loads((world_dir / "synthetic_world.json").read_text())
    assert manifest["seed"] == 5 and manifest["train"] == 6


def test_ood_bank_annotations_load_with_pycocotools(world_dir):
    from pycocotools.coco import COCO

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        coco = COCO(str(world_dir / "ood_bank/annotations/instances_train.json"))
        assert len(coco.getImgIds()) == 3 and coco.getAnnIds()
        for annotation in coco.loadAnns(coco.getAnnIds()):
            mask = coco.annToMask(annotation)
            image = coco.loadImgs(annotation["image_id"])[0]
            assert (world_dir / "ood_bank/train" / image["file_name"]).is_file()
            # Polygon outlines cover the mask they were traced from, up to the border pixels.
            assert abs(mask.sum() - annotation["area"]) <= 0.25 * annotation["area"]


def test_reader_lists_pairs_and_converts_to_train_ids(world_dir):
    dataset = CityscapesDataset(world_dir / "cityscapes", "train")
    assert len(dataset) == 6
    image, train_ids = dataset[0]
    assert image.shape == (64, 128, 3) and image.dtype == np.uint8
    label_ids = cv2.imread(str(dataset.samples[0].label_path), cv2.IMREAD_UNCHANGED)
    expected = np.vectorize(lambda v: id2label[int(v)].trainId % 256)(label_ids)
    expected[expected == 255] = 255
    assert np.array_equal(train_ids, expected.astype(np.uint8))
    assert dataset.class_names[0] == "road" and len(dataset.class_names) == 19


def test_city_filter_and_val_split(world_dir):
    samples = list_cityscapes(world_dir / "cityscapes", "train", cities=("alphaburg",))
    assert len(samples) == 2 and {sample.city for sample in samples} == {"alphaburg"}
    assert len(list_cityscapes(world_dir / "cityscapes", "val")) == 2


def test_lookup_table_matches_cityscapesscripts():
    table = label_id_to_train_id()
    assert table[7] == 0 and table[26] == 13 and table[0] == 255 and table[1] == 255
    assert to_train_ids(np.array([[33, 23]], np.uint8)).tolist() == [[18, 10]]
    assert CITYSCAPES_CLASSES[18] == "bicycle"


@pytest.mark.parametrize(
    "problem, match",
    [
        ("split", "unknown Cityscapes split"),
        ("root", "not found"),
        ("city", "not in"),
        ("label", "have no label"),
    ],
)
def test_wrong_layouts_raise_input_errors(world_dir, tmp_path, problem, match):
    root = tmp_path / "cs"
    shutil.copytree(world_dir / "cityscapes", root)
    split, cities = "train", None
    if problem == "split":
        split = "training"
    elif problem == "root":
        shutil.rmtree(root / "gtFine")
    elif problem == "city":
        cities = ("nowhere",)
    else:
        next((root / "gtFine/train").glob("*/*.png")).unlink()
    with pytest.raises(InputError, match=match):
        list_cityscapes(root, split, cities)
