"""``anomaly-seg detect`` writes each image's objects as JSON (tiny random model)."""

import json

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.cli import main


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for index in range(2):
        image = rng.integers(0, 256, size=(72, 150, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"frame{index}.png"), image)
    return folder


def test_detect_writes_objects_with_positions(tiny_model, images, tmp_path):
    calibration = tmp_path / "camera.yaml"
    calibration.write_text(
        "image_width: 150\nimage_height: 72\n"
        "camera_matrix: {rows: 3, cols: 3, data: [120, 0, 74.5, 0, 120, 35.5, 0, 0, 1]}\n"
        "distortion_model: plumb_bob\n"
        "distortion_coefficients: {rows: 1, cols: 5, data: [-0.1, 0.01, 0, 0, 0]}\n"
    )
    out = tmp_path / "out"
    arguments = ["detect", str(images), "--model", str(tiny_model), "--out", str(out)]
    arguments += ["--score", "entropy", "--threshold", "0.5", "--camera-info", str(calibration)]
    assert main([*arguments, "--mount", "0", "0", "1.5", "0", "0.1", "0"]) == 0
    total = 0
    for index in range(2):
        document = json.loads((out / f"frame{index}_objects.json").read_text())
        assert (document["height"], document["width"]) == (72, 150)
        mask = cv2.imread(str(out / f"frame{index}_mask.png"), cv2.IMREAD_UNCHANGED) > 0
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
        components = {
            ((x, y, x + w - 1, y + h - 1), area) for x, y, w, h, area in stats[1:].tolist()
        }
        for item in document["objects"]:
            assert (tuple(item["box"]), item["area_px"]) in components
            assert item["area_px"] >= 20
            # 0.1 rad down: rows below 35.5 − 120·tan(0.1) ≈ 23.5 see the ground
            bottom = item["box"][3]
            assert (item["ground"] is not None) == (bottom + 0.5 > 24.0), item
            if item["ground"] is not None:
                assert item["ground"]["range_m"] > 0 and item["ground"]["range_sigma_m"] > 0
        total += len(document["objects"])
    assert total > 0


def test_detect_needs_both_camera_info_and_mount(tiny_model, images, tmp_path, caplog):
    arguments = ["detect", str(images), "--model", str(tiny_model), "--out", str(tmp_path / "o")]
    assert main([*arguments, "--mount", "0", "0", "1.5", "0", "0", "0"]) != 0
    assert "need both --camera-info and --mount" in caplog.text
    assert not (tmp_path / "o").exists()  # refused before any work


def test_road_region_only_when_asked_and_at_camera_size(tiny_model):
    from anomaly_seg_ros.config import DetectorConfig
    from anomaly_seg_ros.detector import Detector
    from anomaly_seg_ros.pipeline import preprocess, refine

    rgb = np.random.default_rng(2).integers(0, 256, (90, 170, 3), dtype=np.uint8)
    config = DetectorConfig(road_confidence=0.0)  # every pixel labelled road is a seed
    with Detector.from_path(tiny_model, config) as detector:
        plain = detector.detect(rgb)
        assert plain.road_region is None and "road_region" not in plain.timings
        asked = detector.detect(rgb, road_region=True)
        added = detector.add_road_region(plain)
    seeds = refine.road_seeds(plain.summary, config.road_class, config.road_confidence)
    expected = refine.road_region(plain.summary.label, None, seeds=seeds)
    expected = preprocess.resize_labels(expected.view(np.uint8), (90, 170)).view(bool)
    assert asked.road_region is not None and asked.road_region.dtype == bool
    np.testing.assert_array_equal(asked.road_region, expected)
    np.testing.assert_array_equal(added.road_region, expected)
