"""Pixel metrics against scikit-learn, hand-computed cases, and binned vs exact."""

import logging

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.binned_pixel_metrics import (
    BinnedPixelEvaluator,
    float32_from_keys,
    float32_keys,
)
from anomaly_seg_ros.evaluation.factory import create_pixel_evaluator, pixel_metrics
from anomaly_seg_ros.evaluation.operating_points import strict_threshold
from anomaly_seg_ros.evaluation.pixel_metrics import ExactPixelEvaluator


def _frames(seed, num_frames=4, shape=(60, 80), positive_rate=0.1, decimals=1):
    """Frames of rounded (hence heavily tied) scores, with void pixels."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(num_frames):
        label = (rng.random(shape) < positive_rate).astype(np.uint8)
        score = rng.normal(size=shape) + 1.2 * label
        if decimals is not None:
            score = np.round(score, decimals)
        label[rng.random(shape) < 0.05] = 255
        frames.append((score.astype(np.float32), label))
    return frames


def _sklearn_reference(frames):
    scores = np.concatenate([score.ravel() for score, _ in frames])
    labels = np.concatenate([label.ravel() for _, label in frames])
    valid = labels != 255
    scores, labels = scores[valid], labels[valid]
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    index = np.searchsorted(tpr, 0.95)
    return {
        "auroc": roc_auc_score(labels, scores),
        "ap": average_precision_score(labels, scores),
        "fpr95": fpr[index],
        "threshold95": thresholds[index],
    }


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("positive_rate", [0.02, 0.3])
def test_exact_mode_equals_sklearn_with_ties(seed, positive_rate):
    frames = _frames(seed, positive_rate=positive_rate, decimals=seed % 3)
    evaluator = ExactPixelEvaluator()
    for score, label in frames:
        evaluator.process(score, label)
    metrics = evaluator.evaluate()
    reference = _sklearn_reference(frames)
    assert metrics.auroc == pytest.approx(reference["auroc"], abs=1e-6)
    assert metrics.average_precision == pytest.approx(reference["ap"], abs=1e-6)
    # FPR95 convention: first point of the full ROC curve with TPR >= 0.95, no interpolation.
    assert metrics.fpr_at_95_tpr == pytest.approx(reference["fpr95"], abs=1e-12)
    assert metrics.threshold_at_95_tpr == pytest.approx(reference["threshold95"], abs=1e-6)
    labels = np.concatenate([label.ravel() for _, label in frames])
    assert metrics.num_positive == np.count_nonzero(labels == 1)
    assert metrics.num_ignored == np.count_nonzero(labels == 255)
    assert metrics.num_frames == len(frames)


def test_hand_computed_tiny_case():
    # scikit-learn's documentation example: AUROC 0.75, AP 0.8333.
    score = np.array([0.1, 0.4, 0.35, 0.8], dtype=np.float32)
    label = np.array([0, 0, 1, 1], dtype=np.uint8)
    metrics = pixel_metrics(score, label)
    assert metrics.auroc == pytest.approx(0.75)
    assert metrics.average_precision == pytest.approx(5 / 6)
    # TPR 1.0 first reached at 0.35, where one negative (0.4) of two is above: FPR 0.5.
    assert metrics.fpr_at_95_tpr == pytest.approx(0.5)
    assert metrics.threshold_at_95_tpr == pytest.approx(0.35)
    # At 0.35: TP 2, FP 1, FN 0 -> F1 = 4/5, better than 2/3 at 0.8.
    assert metrics.best_f1 == pytest.approx(0.8)
    assert metrics.best_f1_threshold == pytest.approx(0.35)


def test_all_tied_scores_give_chance_auroc():
    label = np.array([0, 1, 0, 1, 1, 255], dtype=np.uint8)
    metrics = pixel_metrics(np.zeros(6, dtype=np.float32), label)
    assert metrics.auroc == pytest.approx(0.5)
    assert metrics.average_precision == pytest.approx(0.6)
    assert metrics.fpr_at_95_tpr == pytest.approx(1.0)


def test_best_f1_matches_brute_force():
    ((score, label),) = _frames(11, num_frames=1, shape=(40, 40), decimals=1)
    metrics = pixel_metrics(score, label)
    valid = label != 255
    best = 0.0
    for threshold in np.unique(score[valid]):
        predicted = score[valid] >= threshold
        truth = label[valid] == 1
        tp = np.count_nonzero(predicted & truth)
        best = max(best, 2 * tp / (predicted.sum() + truth.sum()))
    assert metrics.best_f1 == pytest.approx(best)
    predicted = score[valid] >= metrics.best_f1_threshold
    truth = label[valid] == 1
    f1 = 2 * np.count_nonzero(predicted & truth) / (predicted.sum() + truth.sum())
    assert f1 == pytest.approx(best)


@pytest.mark.parametrize(
    "binning",
    [{}, {"score_range": (-6.0, 8.0), "num_bins": 4096}],
    ids=["float-bits", "uniform"],
)
def test_binned_within_tolerance_of_exact(binning):
    # Continuous scores: the binned mode merges neighbours into one bin. Stated tolerance:
    # 2e-3 on AUROC, AP and FPR95 for the default float bits or 4096 uniform bins.
    frames = _frames(3, num_frames=6, decimals=None)
    exact, binned = ExactPixelEvaluator(), BinnedPixelEvaluator(**binning)
    for score, label in frames:
        exact.process(score, label)
        binned.process(score, label)
    exact_metrics, binned_metrics = exact.evaluate(), binned.evaluate()
    assert binned_metrics.mode == "binned"
    assert binned_metrics.auroc == pytest.approx(exact_metrics.auroc, abs=2e-3)
    assert binned_metrics.average_precision == pytest.approx(
        exact_metrics.average_precision, abs=2e-3
    )
    assert binned_metrics.fpr_at_95_tpr == pytest.approx(exact_metrics.fpr_at_95_tpr, abs=2e-3)
    assert binned_metrics.best_f1 == pytest.approx(exact_metrics.best_f1, abs=2e-3)
    assert binned_metrics.num_positive == exact_metrics.num_positive


def test_binned_equals_exact_when_every_value_has_its_own_bin():
    frames = _frames(5, decimals=1)
    binned = BinnedPixelEvaluator(score_range=(-10.0, 10.0), num_bins=200)
    for score, label in frames:
        # Offsetting by half a bin puts each 0.1-grid value in the middle of its own bin.
        binned.process(score + np.float32(0.05), label)
    reference = _sklearn_reference(frames)
    metrics = binned.evaluate()
    assert metrics.auroc == pytest.approx(reference["auroc"], abs=1e-9)
    assert metrics.average_precision == pytest.approx(reference["ap"], abs=1e-9)
    assert metrics.fpr_at_95_tpr == pytest.approx(reference["fpr95"], abs=1e-12)


def test_binned_memory_does_not_grow_and_clipping_is_reported(caplog):
    binned = BinnedPixelEvaluator(score_range=(0.0, 1.0), num_bins=64)
    sizes = set()
    for score, label in _frames(7, num_frames=5):
        binned.process(score, label)
        sizes.add(binned._positive_hist.nbytes + binned._negative_hist.nbytes)
    assert sizes == {2 * 64 * 8}
    with caplog.at_level(logging.WARNING):
        binned.evaluate()
    assert binned.num_clipped > 0
    assert "clipped" in caplog.text


def test_float32_keys_preserve_order():
    values = np.array(
        [-np.inf, -3e38, -1.5, -1e-40, -0.0, 0.0, 1e-40, 2.5, 3e38, np.inf], dtype=np.float32
    )
    keys = float32_keys(values)
    assert np.all(np.diff(keys.astype(np.int64)) >= 0)
    assert keys[4] == keys[5]  # -0.0 == +0.0
    np.testing.assert_array_equal(float32_from_keys(keys), values + np.float32(0))


def test_strict_threshold_reproduces_greater_equal_mask():
    score = np.array([0.1, 0.35, 0.35, 0.4, 0.8], dtype=np.float32)
    threshold = 0.35
    strict = strict_threshold(threshold)
    np.testing.assert_array_equal(score > strict, score >= np.float32(threshold))


def test_single_class_gives_nan_with_warning(caplog):
    with caplog.at_level(logging.WARNING):
        metrics = pixel_metrics(np.ones(4, np.float32), np.zeros(4, np.uint8))
    assert np.isnan(metrics.auroc)
    assert np.isnan(metrics.average_precision)
    assert "undefined" in caplog.text


def test_float64_scores_are_kept_in_float64():
    # 1 + 1e-12 and 1 are equal in float32: keeping float64 keeps them apart, like sklearn.
    score = np.array([1.0, 1.0 + 1e-12], dtype=np.float64)
    metrics = pixel_metrics(score, np.array([0, 1], dtype=np.uint8))
    assert metrics.auroc == pytest.approx(1.0)


@pytest.mark.parametrize(
    "score, label, message",
    [
        (np.zeros((2, 2), np.float32), np.zeros((2, 3), np.uint8), "shape"),
        (np.array([np.nan, 0.0], np.float32), np.array([0, 1], np.uint8), "NaN"),
        (np.zeros(3, np.float32), np.array([0, 2, 1], np.uint8), r"\[2\]"),
        (np.zeros(2, np.float32), np.array([0.0, 1.0]), "integer"),
    ],
)
def test_invalid_input_raises(score, label, message):
    with pytest.raises(InputError, match=message):
        ExactPixelEvaluator().process(score, label)


def test_reset_forgets_frames_and_factory_checks_mode():
    evaluator = create_pixel_evaluator("exact")
    evaluator.process(np.ones(3, np.float32), np.array([0, 1, 1], np.uint8))
    evaluator.reset()
    evaluator.process(np.array([0.0, 1.0], np.float32), np.array([0, 1], np.uint8))
    assert evaluator.evaluate().num_positive == 1
    assert isinstance(create_pixel_evaluator("binned", num_bins=16), BinnedPixelEvaluator)
    with pytest.raises(InputError, match="exact, binned"):
        create_pixel_evaluator("approximate")
