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
    _write_frame(tmp_path / "original" / "a.png", tmp_path / "labels" / "a.png", 0)
    _write_frame(tmp_path / "original" / "b.png", None, 1)
    with pytest.raises(InputError, match="1 of 2 images"):
        AnomalyDataset(tmp_path)
    dataset = AnomalyDataset(tmp_path, allow_unlabelled=True)
    assert dataset[1].label_path is None
    with pytest.raises(InputError, match="no label"):
        dataset[1].load_label()


def test_invalid_label_values_and_sizes(tmp_path):
    _write_frame(tmp_path / "original" / "a.png", tmp_path / "labels" / "a.png", 0)
    cv2.imwrite(str(tmp_path / "labels" / "a.png"), np.full((24, 32), 2, np.uint8))
    with pytest.raises(InputError, match=r"values \[2\].*'validation' and 'road_anomaly'"):
        AnomalyDataset(tmp_path).read(0)
    cv2.imwrite(str(tmp_path / "labels" / "a.png"), np.zeros((10, 10), np.uint8))
    with pytest.raises(InputError, match="same size"):
        AnomalyDataset(tmp_path).read(0)
    colour = np.zeros((24, 32, 3), np.uint8)
    colour[..., 2] = 255  # a colour label (SMIYC's *_color.png), not grey in three channels
    cv2.imwrite(str(tmp_path / "labels" / "a.png"), colour)
    with pytest.raises(InputError, match="single-channel"):
        AnomalyDataset(tmp_path).read(0)


def _labelled(shape=(24, 32), anomaly_value=1):
    """A 0 / anomaly / 255 label with all three values present."""
    label = np.zeros(shape, np.uint8)
    label[5:12, 8:20] = anomaly_value
    label[:2] = 255
    return label


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def test_smiyc_tracks_leave_out_the_held_out_test_split(tmp_path):
    """AnomalyTrack: jpg, 10 labelled validation frames among unlabelled test frames;
    ObstacleTrack: webp. Only labelled frames are read; the others are listed."""
    for track, suffix in (("dataset_AnomalyTrack", ".jpg"), ("dataset_ObstacleTrack", ".webp")):
        root = tmp_path / track
        for index in range(2):
            stem = f"validation_{index:04d}"
            _write(root / "images" / f"{stem}{suffix}", np.full((24, 32, 3), 90, np.uint8))
            _write(root / "labels_masks" / f"{stem}_labels_semantic.png", _labelled())
            _write(
                root / "labels_masks" / f"{stem}_labels_semantic_color.png",
                np.full((24, 32, 3), (0, 0, 255), np.uint8),
            )
        for stem in ("road_0001", "road_0002", "road_0003"):
            _write(root / "images" / f"{stem}{suffix}", np.zeros((24, 32, 3), np.uint8))
        dataset = AnomalyDataset(root)
        assert dataset.layout == "smiyc", track
        assert [frame.name for frame in dataset] == ["validation_0000", "validation_0001"]
        assert dataset.held_out == [f"road_000{i}{suffix}" for i in (1, 2, 3)]
        image, label = dataset.read(1)
        assert image.shape == (24, 32, 3)
        np.testing.assert_array_equal(label, _labelled())
        assert len(AnomalyDataset(root, allow_unlabelled=True)) == 5
    only_test = tmp_path / "test_only"
    _write(only_test / "images" / "road_0001.jpg", np.zeros((24, 32, 3), np.uint8))
    (only_test / "labels_masks").mkdir()
    with pytest.raises(InputError, match="held-out test split"):
        AnomalyDataset(only_test, layout="smiyc")


def test_common_validation_layout_and_road_anomaly_label_two(tmp_path):
    """images/ + labels_masks/<stem>.png is the validation layout (not SMIYC); its Road
    Anomaly copy marks anomalies with 2, read as 1."""
    fishy = tmp_path / "FS_LostFound_full"
    _write(fishy / "images" / "0.png", np.zeros((24, 32, 3), np.uint8))
    _write(fishy / "labels_masks" / "0.png", _labelled())
    dataset = AnomalyDataset(fishy)
    assert dataset.layout == "validation"
    np.testing.assert_array_equal(dataset.read(0)[1], _labelled())

    road_anomaly = tmp_path / "RoadAnomaly"
    _write(road_anomaly / "images" / "animals01.jpg", np.zeros((24, 32, 3), np.uint8))
    _write(road_anomaly / "labels_masks" / "animals01.png", _labelled(anomaly_value=2))
    label = AnomalyDataset(road_anomaly).read(0)[1]
    np.testing.assert_array_equal(label, _labelled())  # 2 -> 1, 0 and 255 kept
    both = _labelled(anomaly_value=2)
    both[20:, 20:] = 1
    _write(road_anomaly / "labels_masks" / "animals01.png", both)
    with pytest.raises(InputError, match="both 1 and 2"):
        AnomalyDataset(road_anomaly).read(0)


def test_road_anomaly_original_release(tmp_path):
    """frames/<name>.jpg + frames/<name>.labels/labels_semantic.png, anomaly = 2."""
    for index in range(2):
        stem = f"animals{index:02d}_sheep"
        _write(tmp_path / "frames" / f"{stem}.jpg", np.zeros((24, 32, 3), np.uint8))
        _write(
            tmp_path / "frames" / f"{stem}.labels" / "labels_semantic.png",
            _labelled(anomaly_value=2),
        )
    (tmp_path / "frame_list.json").write_text('["animals00_sheep.jpg", "animals01_sheep.jpg"]')
    dataset = AnomalyDataset(tmp_path)
    assert dataset.layout == "road_anomaly" and len(dataset) == 2
    np.testing.assert_array_equal(dataset.read(0)[1], _labelled())
    _write(tmp_path / "frames" / "animals00_sheep.labels" / "labels_semantic.png", _labelled())
    with pytest.raises(InputError, match=r"values \[1\]"):
        dataset.read(0)  # 1 is not an anomaly value of the original release


def test_ambiguous_layouts_ask_for_layout(tmp_path):
    # original/ and images/ side by side
    mixed = tmp_path / "mixed"
    _write_frame(mixed / "original" / "a.png", mixed / "labels" / "a.png", 0)
    _write_frame(mixed / "images" / "a.png", mixed / "labels_masks" / "a.png", 0)
    with pytest.raises(InputError, match=r"ambiguous.*--layout processed\|validation"):
        AnomalyDataset(mixed)
    assert AnomalyDataset(mixed, layout="processed").layout == "processed"
    assert AnomalyDataset(mixed, layout="validation").layout == "validation"
    # labels named both ways
    both = tmp_path / "both"
    _write_frame(both / "images" / "a.png", both / "labels_masks" / "a.png", 0)
    _write_frame(both / "images" / "b.png", both / "labels_masks" / "b_labels_semantic.png", 1)
    with pytest.raises(InputError, match=r"--layout smiyc\|validation"):
        detect_layout(both)
    # no label at all yet: either could be meant
    empty = tmp_path / "empty"
    _write_frame(empty / "images" / "a.png", None, 0)
    (empty / "labels_masks").mkdir()
    with pytest.raises(InputError, match="0 of 1 images have a label"):
        detect_layout(empty)


def test_grey_labels_stored_as_colour_are_read(tmp_path):
    _write(tmp_path / "original" / "a.png", np.zeros((24, 32, 3), np.uint8))
    _write(tmp_path / "labels" / "a.png", np.repeat(_labelled()[..., None], 3, axis=2))
    np.testing.assert_array_equal(AnomalyDataset(tmp_path).read(0)[1], _labelled())
