"""Anomaly dataset readers on generated folders in each published layout."""

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.datasets.anomaly import AnomalyDataset, detect_layout
from anomaly_seg_ros.errors import InputError


def _write_frame(image_path, label_path, seed, shape=(24, 32)):
    rng = np.random.default_rng(seed)
    rgb = np.zeros((*shape, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # pure red, to check the channel order
    label = rng.choice(np.array([0, 1, 255], dtype=np.uint8), size=shape)
    image_path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(image_path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if label_path is not None:
        label_path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(label_path), label)
    return label


def test_processed_layout_fishyscapes_and_road_anomaly(tmp_path):
    labels = {}
    for index, suffix in enumerate([".png", ".jpg", ".png"]):
        name = f"{index:04d}"
        labels[name] = _write_frame(
            tmp_path / "original" / f"{name}{suffix}", tmp_path / "labels" / f"{name}.png", index
        )
    (tmp_path / "labels" / "notes.txt").write_text("not a frame")
    dataset = AnomalyDataset(tmp_path)
    assert dataset.layout == "processed"
    assert [frame.name for frame in dataset] == ["0000", "0001", "0002"]
    image, label = dataset.read(1)
    assert image.dtype == np.uint8 and image.shape == (24, 32, 3)
    assert image[..., 0].mean() > 150 and image[..., 2].mean() < 50  # RGB, not BGR
    np.testing.assert_array_equal(label, labels["0001"])


def test_smiyc_layout_ignores_color_label_files(tmp_path):
    for index in range(2):
        name = f"validation_{index}"
        _write_frame(
            tmp_path / "images" / f"{name}.jpg",
            tmp_path / "labels_masks" / f"{name}_labels_semantic.png",
            index,
        )
        cv2.imwrite(
            str(tmp_path / "labels_masks" / f"{name}_labels_semantic_color.png"),
            np.zeros((24, 32, 3), np.uint8),
        )
    dataset = AnomalyDataset(tmp_path, layout="auto")
    assert dataset.layout == "smiyc" and len(dataset) == 2
    assert dataset[0].label_path.name == "validation_0_labels_semantic.png"
    assert set(np.unique(dataset.read(0)[1])) <= {0, 1, 255}


def test_wrong_layout_says_what_is_expected(tmp_path):
    (tmp_path / "leftImg8bit").mkdir()
    with pytest.raises(InputError, match="original/"):
        AnomalyDataset(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        AnomalyDataset(tmp_path / "missing")
    with pytest.raises(InputError, match="unknown layout"):
        AnomalyDataset(tmp_path, layout="kitti")
    (tmp_path / "original").mkdir()
    assert detect_layout(tmp_path) == "processed"
    with pytest.raises(InputError, match="labels is missing"):
        AnomalyDataset(tmp_path)


def test_missing_labels_are_an_error_unless_allowed(tmp_path):
    labelled = tmp_path / "labels_masks" / "a_labels_semantic.png"
    _write_frame(tmp_path / "images" / "a.png", labelled, 0)
    _write_frame(tmp_path / "images" / "b.png", None, 1)
    with pytest.raises(InputError, match="1 of 2 images"):
        AnomalyDataset(tmp_path)
    dataset = AnomalyDataset(tmp_path, allow_unlabelled=True)
    assert dataset[1].label_path is None
    with pytest.raises(InputError, match="no label"):
        dataset[1].load_label()


def test_invalid_label_values_and_sizes(tmp_path):
    _write_frame(tmp_path / "original" / "a.png", tmp_path / "labels" / "a.png", 0)
    cv2.imwrite(str(tmp_path / "labels" / "a.png"), np.full((24, 32), 2, np.uint8))
    with pytest.raises(InputError, match=r"values \[2\]"):
        AnomalyDataset(tmp_path).read(0)
    cv2.imwrite(str(tmp_path / "labels" / "a.png"), np.zeros((10, 10), np.uint8))
    with pytest.raises(InputError, match="same size"):
        AnomalyDataset(tmp_path).read(0)
    cv2.imwrite(str(tmp_path / "labels" / "a.png"), np.zeros((24, 32, 3), np.uint8))
    with pytest.raises(InputError, match="single-channel"):
        AnomalyDataset(tmp_path).read(0)
