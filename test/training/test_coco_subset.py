"""COCO OoD subset builder on a real COCO-format fixture (pycocotools reads it)."""

import json

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from anomaly_seg_ros.errors import ModelError
from training.coco_subset import (
    BANK_FORMAT,
    ObjectBank,
    SubsetRules,
    build_object_bank,
    main,
    select_objects,
)

# pycocotools' C extension predates NumPy 2's copy keyword
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_default_rules_keep_only_whole_unoccluded_objects(coco_fixture):
    coco = COCO(str(coco_fixture.annotations))
    kept = {ann["id"] for ann, _ in select_objects(coco, SubsetRules())}
    assert kept == coco_fixture.kept_ids


def test_each_rule_rejects_its_case(coco_fixture):
    coco = COCO(str(coco_fixture.annotations))

    def kept(**changes):
        return {ann["id"] for ann, _ in select_objects(coco, SubsetRules(**changes))}

    assert 21 in kept(excluded_categories=())  # the person's image comes back
    assert 31 in kept(min_image_side=400)
    assert 12 in kept(min_area=100)
    assert {41, 42} <= kept(max_contact=1.0)
    assert 44 in kept(min_box_fill=0.0)
    assert 45 in kept(min_main_component=0.0, min_box_fill=0.0)
    assert 43 in kept(border_margin=-1000)
    assert 13 not in kept(min_area=1)  # crowd regions never enter the bank


def test_bank_round_trip(coco_fixture, object_bank_dir):
    index = json.loads((object_bank_dir / "index.json").read_text())
    assert index["format"] == BANK_FORMAT
    assert index["rules"]["min_image_side"] == 480
    bank = ObjectBank(object_bank_dir)
    assert len(bank) == len(coco_fixture.kept_ids)
    for position, entry in enumerate(bank.entries):
        rgb, mask = bank.load(position)
        assert rgb.shape[:2] == mask.shape and rgb.dtype == np.uint8 and mask.dtype == bool
        assert int(mask.sum()) == entry["area"]
        colour = np.array(coco_fixture.colours[entry["id"]])
        # cut-outs are in RGB and the mask lies on the object (pycocotools and OpenCV
        # rasterise polygon edges a pixel apart, so compare the mask's interior)
        interior = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        assert interior.sum() > 0.8 * mask.sum()
        assert np.abs(rgb[interior].astype(int) - colour).max() == 0
        if entry["category"] == "dog":  # the ellipse: its box corners are background
            assert not mask[0, 0] and rgb[0, 0].tolist() == [90, 90, 90]
    assert bank.load(0) is bank.load(0)  # cached


def test_limit_and_cli(coco_fixture, tmp_path):
    index = build_object_bank(coco_fixture.annotations, coco_fixture.images, tmp_path, limit=1)
    assert len(ObjectBank(index)) == 1
    out = tmp_path / "cli"
    code = main(
        [
            "--annotations", str(coco_fixture.annotations),
            "--images", str(coco_fixture.images),
            "--out", str(out),
            "--exclude", "dog,bottle",
        ]
    )  # fmt: skip
    assert code == 0
    categories = {entry["category"] for entry in ObjectBank(out).entries}
    # images 1 (dog) and 5 (bottle) are dropped now; image 2 (person) is not any more
    assert categories == {"cat", "person"}


def test_bank_errors(tmp_path, coco_fixture):
    with pytest.raises(ModelError, match=r"training\.coco_subset"):
        ObjectBank(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"format": "other", "version": 1}))
    with pytest.raises(ModelError, match="not a v1"):
        ObjectBank(tmp_path)
    with pytest.raises(ModelError, match="cannot read COCO image"):
        build_object_bank(coco_fixture.annotations, tmp_path / "missing", tmp_path / "b")
