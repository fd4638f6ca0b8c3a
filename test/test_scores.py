"""Every score against its textbook formula, on random logits."""

import numpy as np
import pytest

from anomaly_seg_ros.config import SCORE_TYPES
from anomaly_seg_ros.errors import ConfigError, ModelError
from anomaly_seg_ros.model.summary import LogitSummary
from anomaly_seg_ros.pipeline.scores import compute_score


def summarize(logits: np.ndarray) -> LogitSummary:
    """Reference summary of (C, H, W) logits in float64, via softmax probabilities."""
    logits = logits.astype(np.float64)
    shifted = np.exp(logits - logits.max(axis=0))
    probabilities = shifted / shifted.sum(axis=0)
    logsumexp = np.log(np.exp(logits).sum(axis=0))
    return LogitSummary(
        label=logits.argmax(axis=0).astype(np.uint8),
        max_logit=logits.max(axis=0).astype(np.float32),
        min_logit=logits.min(axis=0).astype(np.float32),
        logsumexp=logsumexp.astype(np.float32),
        entropy=(-(probabilities * np.log(probabilities)).sum(axis=0)).astype(np.float32),
    )


@pytest.fixture
def logits(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(0.0, 3.0, size=(19, 12, 17))


def test_msp_is_one_minus_max_softmax(logits):
    softmax = np.exp(logits) / np.exp(logits).sum(axis=0)
    score = compute_score("msp", summarize(logits))
    np.testing.assert_allclose(score, 1.0 - softmax.max(axis=0), atol=1e-6)


def test_max_logit_is_negative_max(logits):
    np.testing.assert_allclose(
        compute_score("max_logit", summarize(logits)), -logits.max(0), rtol=1e-6
    )


def test_entropy_is_shannon_entropy(logits):
    softmax = np.exp(logits) / np.exp(logits).sum(axis=0)
    expected = -(softmax * np.log(softmax)).sum(axis=0)
    np.testing.assert_allclose(compute_score("entropy", summarize(logits)), expected, atol=1e-5)


def test_energy_is_negative_logsumexp(logits):
    expected = -np.log(np.exp(logits).sum(axis=0))
    np.testing.assert_allclose(compute_score("energy", summarize(logits)), expected, rtol=1e-5)


def test_max_min_logit_is_negative_spread(logits):
    expected = -(logits.max(axis=0) - logits.min(axis=0))
    np.testing.assert_allclose(
        compute_score("max_min_logit", summarize(logits)), expected, rtol=1e-5
    )


def test_sml_standardizes_by_predicted_class(logits, rng):
    mean = rng.normal(5, 1, 19).astype(np.float32)
    std = rng.uniform(0.5, 2.0, 19).astype(np.float32)
    predicted = logits.argmax(axis=0)
    expected = -(logits.max(axis=0) - mean[predicted]) / std[predicted]
    score = compute_score("sml", summarize(logits), mean, std)
    np.testing.assert_allclose(score, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in SCORE_TYPES if n != "sml"])
def test_higher_means_more_anomalous(name):
    """A peaked (confident) pixel must score lower than a flat (uncertain) one."""
    confident = np.full((19, 1, 1), -2.0)
    confident[3] = 12.0
    flat = np.full((19, 1, 1), 0.5)
    logits = np.concatenate([confident, flat], axis=2)
    score = compute_score(name, summarize(logits))
    assert score.dtype == np.float32
    assert score[0, 0] < score[0, 1]


def test_unknown_score_lists_valid_names(logits):
    with pytest.raises(ConfigError, match="valid: msp, max_logit"):
        compute_score("maxlogit", summarize(logits))


def test_sml_without_statistics_is_an_error(logits):
    with pytest.raises(ModelError, match="SML stats"):
        compute_score("sml", summarize(logits))
