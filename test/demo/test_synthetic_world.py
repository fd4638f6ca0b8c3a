"""The synthetic world: determinism, valid labels, anomalies apart from ID classes."""

import re

import numpy as np
import pytest

from anomaly_seg_ros.datasets.cityscapes import to_train_ids
from demo.synthetic import labels as L
from demo.synthetic.anomalies import road_anomalies
from demo.synthetic.generate import frame_rng, render_anomaly_frame, render_frame
from demo.synthetic.ood_bank import CATEGORIES, mask_polygons, render_bank_image
from demo.synthetic.scene import World
from demo.synthetic.writers import cityscapes_name, fishyscapes_label

#: The classes the issue asks the world to draw (train ids).
ISSUE_CLASSES = {
    "road": 0,
    "sidewalk": 1,
    "building": 2,
    "wall": 3,
    "fence": 4,
    "pole": 5,
    "traffic light": 6,
    "traffic sign": 7,
    "vegetation": 8,
    "terrain": 9,
    "sky": 10,
    "person": 11,
    "rider": 12,
    "car": 13,
    "truck": 14,
    "bus": 15,
    "bicycle": 18,
}


@pytest.fixture(scope="module")
def world() -> World:
    return World(128, 256, seed=3)


def test_same_seed_and_index_give_the_same_frame(world):
    first = render_frame(world, 7, "train", 4)
    again = render_frame(World(128, 256, seed=3), 7, "train", 4)
    other = render_frame(world, 7, "train", 5)
    assert np.array_equal(first.image, again.image)
    assert np.array_equal(first.label_ids, again.label_ids)
    assert not np.array_equal(first.image, other.image)
    assert first.image.shape == (128, 256, 3) and first.image.dtype == np.uint8


def test_train_and_val_streams_differ(world):
    assert not np.array_equal(
        render_frame(world, 0, "train", 0).image, render_frame(world, 0, "val", 0).image
    )


def test_labels_are_valid_cityscapes_ids_and_cover_the_issue_classes(world):
    seen: set[int] = set()
    for index in range(16):
        frame = render_frame(world, 0, "train", index)
        ids = set(np.unique(frame.label_ids).tolist())
        assert ids <= set(L.DRAWN_LABEL_IDS), ids - set(L.DRAWN_LABEL_IDS)
        train_ids = to_train_ids(frame.label_ids)
        assert set(np.unique(train_ids).tolist()) <= set(range(19)) | {255}
        assert not frame.anomaly.any()
        # Every frame is a road scene with a road and a sky.
        assert (train_ids == 0).mean() > 0.05
        seen |= set(np.unique(train_ids).tolist())
    missing = {name for name, train_id in ISSUE_CLASSES.items() if train_id not in seen}
    assert not missing, f"classes never drawn in 16 frames: {missing}"


def test_images_are_textured_not_flat_fills(world):
    frame = render_frame(world, 0, "train", 1)
    train_ids = to_train_ids(frame.label_ids)
    road = frame.image[train_ids == 0].astype(np.float32)
    # Noise textures: many distinct colours and a clear spread inside one class.
    assert len(np.unique(road, axis=0)) > 50
    assert road.std(axis=0).mean() > 3.0


def test_anomaly_frames_have_anomalies_disjoint_from_id_classes(world):
    for index in range(4):
        frame = render_anomaly_frame(world, 0, index)
        assert frame.anomaly.mean() >= 0.001
        # An anomaly pixel carries no Cityscapes class: its label id is "unlabeled".
        assert np.all(frame.label_ids[frame.anomaly] == L.UNLABELED)
        label = fishyscapes_label(frame)
        assert set(np.unique(label).tolist()) <= {0, 1, 255}
        assert np.array_equal(label == 1, frame.anomaly)
        assert np.all(to_train_ids(frame.label_ids)[label == 0] < 19)


def test_anomalies_lie_on_the_road(world):
    frame = world.render(frame_rng(0, "anomaly", 11), anomalies=road_anomalies)
    rows, _ = np.nonzero(frame.anomaly)
    assert rows.size and rows.max() > world.height * 0.4


def test_ood_bank_objects_are_masks_with_polygons_and_another_look(world):
    saturations, anomaly_saturations = [], []
    import cv2

    for index in range(6):
        image, objects = render_bank_image(frame_rng(0, "ood_bank", index), size=128)
        assert image.shape == (128, 128, 3) and 1 <= len(objects) <= 3
        union = np.zeros(image.shape[:2], int)
        for category, mask in objects:
            assert 0 <= category < len(CATEGORIES) and mask.sum() >= 64
            assert mask_polygons(mask)
            union += mask
            hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
            saturations.append(hsv[mask][:, 1].mean())
        assert union.max() == 1  # objects never overlap (non-occluded, like the COCO subset)
        frame = render_anomaly_frame(world, 1, index)
        hsv = cv2.cvtColor(frame.image, cv2.COLOR_RGB2HSV)
        anomaly_saturations.append(hsv[frame.anomaly][:, 1].mean())
    # Family b is saturated and patterned; family a is earthy and dull.
    assert np.mean(saturations) > np.mean(anomaly_saturations) + 30


def test_cityscapes_names_follow_the_official_pattern():
    city, stem = cityscapes_name("train", 4)
    assert re.fullmatch(r"[a-z]+_\d{6}_\d{6}", stem) and stem.startswith(city)
