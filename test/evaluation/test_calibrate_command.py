"""`anomaly-seg calibrate` with the real tiny ONNX model: the YAML threshold hits its target."""

import argparse

import numpy as np
import pytest
import yaml

from anomaly_seg_ros.commands import calibrate, evaluate
from anomaly_seg_ros.config import DetectorConfig, config_from_params_file
from anomaly_seg_ros.datasets.anomaly import AnomalyDataset
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.errors import ConfigError


def _parse(module, name, argv):
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers())
    return parser.parse_args([name, *argv])


def _node_rates(model, params, dataset_root):
    """TPR/FPR of the mask the node would produce with the written parameters."""
    config = config_from_params_file(str(params), base=DetectorConfig())
    dataset = AnomalyDataset(dataset_root)
    hits = anomalous = false_alarms = normal = 0
    with Detector.from_path(model, config, "onnxruntime") as detector:
        for index in range(len(dataset)):
            rgb, label = dataset.read(index)
            mask = detector.detect(rgb).mask
            hits += np.count_nonzero(mask & (label == 1))
            anomalous += np.count_nonzero(label == 1)
            false_alarms += np.count_nonzero(mask & (label == 0))
            normal += np.count_nonzero(label == 0)
    return hits / anomalous, false_alarms / normal


@pytest.mark.parametrize("target", [("--target-tpr", 0.9), ("--target-fpr", 0.05)])
def test_node_reaches_the_calibrated_target(tiny_model, dataset, tmp_path, capsys, target):
    base = tmp_path / "detector.yaml"
    base.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"min_area": 0}}}))
    out = tmp_path / "calibrated.yaml"
    argv = [str(dataset), "--out", str(out), "--model", str(tiny_model), "--no-progress"]
    argv += ["--backend", "onnxruntime", "--params", str(base), "--score", "energy"]
    argv += [target[0], str(target[1])]
    assert calibrate.run(_parse(calibrate, "calibrate", argv)) == 0
    assert "threshold" in capsys.readouterr().out
    parameters = yaml.safe_load(out.read_text())["/**"]["ros__parameters"]
    assert parameters["score_type"] == "energy" and parameters["min_area"] == 0
    tpr, fpr = _node_rates(tiny_model, out, dataset)
    if target[0] == "--target-tpr":
        assert tpr >= target[1]
    else:
        assert fpr <= target[1]


def test_from_saved_scores_writes_the_refinement(tiny_model, dataset, tmp_path):
    saved = tmp_path / "scores"
    argv = [str(dataset), "--out", str(tmp_path / "report"), "--model", str(tiny_model)]
    argv += ["--backend", "onnxruntime", "--scores", "msp", "--variants", "refined"]
    argv += ["--save-scores", str(saved), "--no-components", "--no-progress"]
    assert evaluate.run(_parse(evaluate, "evaluate", argv)) == 0
    out = tmp_path / "calibrated.yaml"
    argv = [str(dataset), "--out", str(out), "--from-scores", str(saved), "--no-progress"]
    argv += ["--score", "msp+refined", "--target-tpr", "0.95"]
    assert calibrate.run(_parse(calibrate, "calibrate", argv)) == 0
    config = config_from_params_file(str(out))
    assert config.score_type == "msp" and config.boundary_suppression and not config.vde
    argv = [str(dataset), "--out", str(out), "--from-scores", str(saved), "--target-tpr", "0.9"]
    with pytest.raises(ConfigError, match="needs --score"):
        calibrate.run(_parse(calibrate, "calibrate", argv))
