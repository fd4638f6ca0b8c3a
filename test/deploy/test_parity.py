"""Parity metrics: label agreement and error percentiles, checked against numpy."""

import numpy as np
import pytest

from anomaly_seg_ros.deploy.parity import ErrorHistogram, ParityAccumulator
from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.model.summary import LogitSummary

BIN_RATIO = 10 ** (1 / 20)  # histogram resolution: 20 bins per decade


def summary(rng, shape=(32, 64), classes=19):
    """A consistent logit summary computed from random logits."""
    logits = rng.normal(0, 3, (classes, *shape)).astype(np.float32)
    shifted = np.exp(logits - logits.max(0))
    probabilities = shifted / shifted.sum(0)
    return LogitSummary(
        label=logits.argmax(0).astype(np.uint8),
        max_logit=logits.max(0),
        min_logit=logits.min(0),
        logsumexp=(np.log(shifted.sum(0)) + logits.max(0)).astype(np.float32),
        entropy=-(probabilities * np.log(probabilities)).sum(0).astype(np.float32),
    )


def perturbed(reference, noise, flipped):
    label = reference.label.copy()
    label.ravel()[:flipped] = (label.ravel()[:flipped] + 1) % 19
    return LogitSummary(
        label=label,
        max_logit=reference.max_logit + noise,
        min_logit=reference.min_logit,
        logsumexp=reference.logsumexp,
        entropy=reference.entropy,
    )


def test_histogram_percentiles_bound_numpy_within_one_bin(rng):
    reference = rng.normal(size=200_000).astype(np.float32)
    error = np.abs(rng.standard_cauchy(200_000)) * 1e-3
    histogram = ErrorHistogram()
    for half in np.array_split(np.arange(reference.size), 2):  # streamed in two frames
        histogram.add(reference[half], reference[half] + error[half])
    exact = np.abs((reference + error).astype(np.float64) - reference)
    for percent in (50, 99, 99.9):
        truth = np.percentile(exact, percent)
        assert truth <= histogram.percentile(percent) * (1 + 1e-9) <= truth * BIN_RATIO**1.01
    assert histogram.maximum == pytest.approx(exact.max())


def test_identical_outputs_have_zero_error_and_nonfinite_is_counted():
    values = np.linspace(-5, 5, 1000, dtype=np.float32)
    histogram = ErrorHistogram()
    histogram.add(values, values.copy())
    assert histogram.percentile(99.9) == 0.0 and histogram.maximum == 0.0
    broken = values.copy()
    broken[:3] = [np.nan, np.inf, -np.inf]
    histogram.add(values, broken)
    assert histogram.nonfinite == 3


def test_accumulator_counts_label_flips_and_map_errors(rng):
    accumulator = ParityAccumulator()
    frames = [summary(rng) for _ in range(3)]
    for frame in frames:
        accumulator.add(frame, perturbed(frame, noise=np.float32(0.01), flipped=20))
    report = accumulator.report()
    pixels = 3 * 32 * 64
    assert report.frames == 3 and report.pixels == pixels
    assert report.label_agreement == pytest.approx(100.0 * (pixels - 60) / pixels)
    assert 0.01 / BIN_RATIO <= report.errors["max_logit"]["p50"] <= 0.01 * BIN_RATIO
    assert report.errors["min_logit"]["max"] == 0.0
    # max_logit score is -max_logit: the same shift; energy does not use max_logit
    assert report.errors["score:max_logit"]["max"] == pytest.approx(0.01, rel=1e-3)
    assert report.errors["score:energy"]["max"] == 0.0
    assert report.errors["score:msp"]["max"] > 0.0
    lines = report.lines()
    assert "label agreement" in lines[0] and len(lines) == 2 + len(report.errors)


def test_accumulator_rejects_shape_mismatch(rng):
    with pytest.raises(InputError, match="shapes differ"):
        ParityAccumulator().add(summary(rng, (8, 8)), summary(rng, (8, 16)))
