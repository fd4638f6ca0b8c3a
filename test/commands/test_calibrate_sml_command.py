"""``anomaly-seg calibrate-sml``: SML statistics of an exported model from unlabelled frames."""

import shutil

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.cli import main
from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.model.sml_stats import load_sml_stats


@pytest.fixture
def frames(tmp_path, rng):
    folder = tmp_path / "frames"
    folder.mkdir()
    images = []
    for index in range(3):
        image = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
        image[40:] = (128, 64, 128)  # a flat region, so some class dominates somewhere
        cv2.imwrite(str(folder / f"{index}.png"), image[..., ::-1])
        images.append(image)
    return folder, images


def test_statistics_of_the_detector_own_pixels(tmp_path, tiny_model, frames):
    model = tmp_path / "model.onnx"
    shutil.copy(tiny_model, model)
    shutil.copy(tiny_model.with_suffix(".json"), model.with_suffix(".json"))
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    aspect: letterbox\n")
    folder, images = frames
    assert (
        main(["calibrate-sml", "--model", str(model), "--params", str(params), str(folder)]) == 0
    )
    written = model.with_suffix(".sml.json")
    assert not list(tmp_path.glob(".*partial*")) and not list(tmp_path.glob("*.tmp"))

    # The same statistics by hand: the Detector's summaries, letterbox padding left out
    config = DetectorConfig(aspect="letterbox")
    with Detector.from_path(model, config, "onnxruntime", sml_stats=None) as detector:
        summaries = [detector.detect(image).summary for image in images]
        names = detector.info.class_names
    columns = slice(7, 7 + 114)  # 160×90 letterboxed into 128×64: 114 columns shown
    max_logit = np.concatenate([s.max_logit[:, columns].ravel() for s in summaries])
    label = np.concatenate([s.label[:, columns].ravel() for s in summaries])
    mean, std = load_sml_stats(written, names)
    import json

    counts = np.asarray(json.loads(written.read_text())["num_pixels"])
    assert counts.sum() == 3 * 64 * 114  # padding columns not counted
    for cls in np.unique(label):
        values = max_logit[label == cls].astype(np.float64)
        assert counts[cls] == values.size
        # float64 running sums of float32 values: agree to float32 rounding
        assert mean[cls] == pytest.approx(values.mean(), rel=1e-5, abs=1e-5)
        assert std[cls] == pytest.approx(values.std(), rel=1e-4, abs=1e-5)
    unseen = counts == 0
    assert np.all(mean[unseen] == 0) and np.all(std[unseen] == 1)
    # The Detector picks the file up beside the model and scores sml with it
    with Detector.from_path(model, DetectorConfig(score_type="sml"), "onnxruntime") as detector:
        assert np.isfinite(detector.detect(images[0]).score).all()


def test_no_frames_is_one_clear_line(tmp_path, tiny_model, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["calibrate-sml", "--model", str(tiny_model), str(empty)]) == 1
    assert not tiny_model.with_suffix(".sml.json").exists()
