"""Threshold calibration reaches its target, is the tightest such threshold, and lands in YAML."""

import numpy as np
import pytest
import yaml

from anomaly_seg_ros.config import config_from_params_file
from anomaly_seg_ros.errors import ConfigError, InputError
from anomaly_seg_ros.evaluation.calibration import calibrate, write_params
from anomaly_seg_ros.evaluation.pixel_metrics import ExactPixelEvaluator


def _validation(seed, decimals=2, num_frames=3, shape=(50, 70)):
    rng = np.random.default_rng(seed)
    evaluator = ExactPixelEvaluator()
    frames = []
    for _ in range(num_frames):
        label = (rng.random(shape) < 0.08).astype(np.uint8)
        score = rng.normal(size=shape) + 2.0 * label
        if decimals is not None:
            score = np.round(score, decimals)
        score = score.astype(np.float32)
        label[rng.random(shape) < 0.03] = 255
        evaluator.process(score, label)
        frames.append((score, label))
    scores = np.concatenate([s.ravel() for s, _ in frames])
    labels = np.concatenate([lab.ravel() for _, lab in frames])
    return evaluator, scores[labels == 1], scores[labels == 0]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("target", [0.5, 0.9, 0.95, 1.0])
def test_target_tpr_reached_with_highest_threshold(seed, target):
    evaluator, positives, negatives = _validation(seed, decimals=seed % 3)
    result = calibrate(evaluator, "max_logit", target_tpr=target)
    threshold = np.float32(result.threshold)
    tpr = np.mean(positives > threshold)
    assert tpr >= target
    assert result.tpr == pytest.approx(tpr)
    assert result.fpr == pytest.approx(np.mean(negatives > threshold))
    # The next representable threshold above already misses the target.
    higher = np.nextafter(threshold, np.float32(np.inf))
    assert np.mean(positives > higher) < target


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("target", [0.0, 0.001, 0.05, 0.5])
def test_target_fpr_respected_with_lowest_threshold(seed, target):
    evaluator, positives, negatives = _validation(seed, decimals=seed % 3)
    result = calibrate(evaluator, "entropy", target_fpr=target)
    threshold = np.float32(result.threshold)
    assert np.mean(negatives > threshold) <= target
    assert result.tpr == pytest.approx(np.mean(positives > threshold))
    lower_values = negatives[negatives <= threshold]
    if lower_values.size:
        # Lowering the threshold below the next score down would exceed the target.
        assert np.mean(negatives >= lower_values.max()) > target


@pytest.mark.parametrize("seed", range(4))
def test_best_f1_threshold_maximises_f1_of_the_strict_mask(seed):
    evaluator, positives, negatives = _validation(seed, decimals=seed % 3)
    result = calibrate(evaluator, "sml", best_f1=True)
    threshold = np.float32(result.threshold)

    def f1(t):
        tp, fp = np.sum(positives > t), np.sum(negatives > t)
        return 2 * tp / (2 * tp + fp + (len(positives) - tp))

    assert result.target == "f1" and result.target_value == pytest.approx(f1(threshold))
    assert result.tpr == pytest.approx(np.mean(positives > threshold))
    # no candidate threshold (every distinct score, brute force) does better
    candidates = np.unique(np.concatenate([positives, negatives]))
    best = max(f1(np.nextafter(c, np.float32(-np.inf))) for c in candidates)
    assert f1(threshold) == pytest.approx(best)


def test_calibration_generalises_to_a_held_out_split():
    train, _, _ = _validation(10, decimals=None, num_frames=4)
    result = calibrate(train, "msp", target_tpr=0.95)
    _, positives, _ = _validation(11, decimals=None, num_frames=4)
    assert np.mean(positives > np.float32(result.threshold)) == pytest.approx(0.95, abs=0.02)


def test_params_yaml_is_read_by_the_node_config(tmp_path):
    evaluator, _, _ = _validation(0)
    result = calibrate(evaluator, "energy", target_tpr=0.95)
    base = tmp_path / "detector.yaml"
    base.write_text(
        yaml.safe_dump(
            {"/**": {"ros__parameters": {"min_area": 50, "threshold": 9.0, "image_topic": "x"}}}
        )
    )
    written = write_params(tmp_path / "calibrated.yaml", result, base=base)
    config = config_from_params_file(str(written))
    assert config.threshold == result.threshold
    assert config.score_type == "energy"
    assert config.min_area == 50
    document = yaml.safe_load(written.read_text())
    assert document["/**"]["ros__parameters"]["image_topic"] == "x"
    assert "TPR" in written.read_text().splitlines()[0]


def test_invalid_requests():
    evaluator, _, _ = _validation(0)
    with pytest.raises(ConfigError, match="exactly one"):
        calibrate(evaluator, "msp")
    with pytest.raises(ConfigError, match="exactly one"):
        calibrate(evaluator, "msp", target_tpr=0.9, target_fpr=0.1)
    with pytest.raises(ConfigError, match="exactly one"):
        calibrate(evaluator, "msp", target_fpr=0.1, best_f1=True)
    with pytest.raises(ConfigError, match="out of range"):
        calibrate(evaluator, "msp", target_tpr=0.0)
    empty = ExactPixelEvaluator()
    empty.process(np.zeros(4, np.float32), np.zeros(4, np.uint8))
    with pytest.raises(InputError, match="anomalous"):
        calibrate(empty, "msp", target_tpr=0.9)
