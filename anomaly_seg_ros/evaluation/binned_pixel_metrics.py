"""Streaming pixel metrics from fixed-bin histograms (Segment-Me-If-You-Can style).

Each frame adds its anomalous and in-distribution scores to two histograms over the same
fixed bins; :meth:`BinnedPixelEvaluator.evaluate` turns them into cumulative counts with a
``cumsum`` from the highest bin down, drops empty bins (repeated thresholds), and reads
AUROC, AP (scikit-learn's step sum), FPR@95%TPR and the best F1 from that table. Memory is
the two histograms, whatever the number of pixels.

Two binnings:

* ``score_range=(low, high)``: ``num_bins`` uniform bins; scores outside are clipped into
  the end bins (a warning says how many), so choose the range to cover the scores.
* ``score_range=None`` (default): bins over the order-preserving bit pattern of float32,
  keeping its top ``float_bits`` bits: no range to choose, and bin edges are spaced by a
  relative 2^-(float_bits-9) (≈ 0.05 % for the default 20 bits, 16 MB of counts).

Scores tied within a bin are treated as tied, so AUROC/AP deviate from the exact values by
at most the mass of positives and negatives sharing bins (in practice < 1e-3 with the
defaults; the tests state the tolerance).
"""

from __future__ import annotations

import logging

import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.evaluator import Evaluator
from anomaly_seg_ros.evaluation.operating_points import OperatingPoints, mann_whitney_auroc
from anomaly_seg_ros.evaluation.pixel_metrics import PixelEvaluator, PixelMetrics, split_by_label

LOGGER = logging.getLogger(__name__)

_SIGN = np.uint32(0x80000000)


def float32_keys(values: np.ndarray) -> np.ndarray:
    """uint32 keys whose unsigned order is the numeric order of the float32 ``values``.

    Positive floats get the sign bit set; negative floats are bit-inverted. ``-0.0`` is
    mapped to ``+0.0`` first so that equal values get equal keys.
    """
    bits = (np.asarray(values, dtype=np.float32) + np.float32(0.0)).view(np.uint32)
    return np.where(bits & _SIGN, ~bits, bits | _SIGN)


def float32_from_keys(keys: np.ndarray) -> np.ndarray:
    """Inverse of :func:`float32_keys`; keys of NaN bit patterns come back as NaN."""
    keys = np.asarray(keys, dtype=np.uint32)
    bits = np.where(keys & _SIGN, keys ^ _SIGN, ~keys)
    return bits.view(np.float32)


class BinnedPixelEvaluator(PixelEvaluator):
    """Pixel metrics from two fixed-bin histograms; memory independent of the pixel count.

    :param score_range: ``(low, high)`` for uniform bins, or None for float-bit bins.
    :param num_bins: number of uniform bins (with ``score_range``).
    :param float_bits: top bits of the float32 key used as the bin (without ``score_range``).
    :raises InputError: an empty range or a bin count out of [2, 2^26].
    """

    mode = "binned"

    def __init__(
        self,
        score_range: tuple[float, float] | None = None,
        num_bins: int = 4096,
        float_bits: int = 20,
    ) -> None:
        if score_range is not None:
            low, high = (float(value) for value in score_range)
            if not np.isfinite([low, high]).all() or not high > low:
                raise InputError(f"score_range {score_range} must be finite with high > low")
            count = int(num_bins)
            self._edges = low + (high - low) * np.arange(count, dtype=np.float64) / count
            self._scale = count / (high - low)
            self._low = low
        else:
            if not 2 <= float_bits <= 26:
                raise InputError(f"float_bits {float_bits} not in [2, 26]")
            count = 1 << float_bits
            self._shift = np.uint32(32 - float_bits)
            lowest_keys = np.arange(count, dtype=np.uint32) << self._shift
            edges = float32_from_keys(lowest_keys)
            # The lowest key of the bins at and below -inf's is a NaN bit pattern: those bins
            # hold -inf at most, so -inf is their edge.
            edges[np.isnan(edges)] = -np.inf
            self._edges = edges.astype(np.float64)
        if not 2 <= count <= 1 << 26:
            raise InputError(f"num_bins {count} not in [2, 2^26]")
        self.score_range = score_range
        self.num_bins = count
        self.reset()

    def reset(self) -> None:
        """Forget every processed frame."""
        self._positive_hist = np.zeros(self.num_bins, dtype=np.int64)
        self._negative_hist = np.zeros(self.num_bins, dtype=np.int64)
        self.num_ignored = 0
        self.num_frames = 0
        self.num_clipped = 0

    def bin_index(self, scores: np.ndarray) -> np.ndarray:
        """(N,) intp bin of each score; bin ``b`` holds ``edges[b] <= score < edges[b+1]``."""
        if self.score_range is None:
            return (float32_keys(scores) >> self._shift).astype(np.intp)
        position = np.floor((scores.astype(np.float64) - self._low) * self._scale)
        outside = (position < 0) | (position >= self.num_bins)
        clipped = int(np.count_nonzero(outside))
        if clipped:
            self.num_clipped += clipped
            np.clip(position, 0, self.num_bins - 1, out=position)
        return position.astype(np.intp)

    def process(self, score: np.ndarray, label: np.ndarray) -> None:
        """Add one frame's histograms.

        :param score: (H, W) float anomaly score, higher = more anomalous.
        :param label: (H, W) uint8 labels 0/1/255.
        :raises InputError: see :func:`~anomaly_seg_ros.evaluation.pixel_metrics.split_by_label`.
        """
        positives, negatives, num_void = split_by_label(score, label)
        self._positive_hist += np.bincount(self.bin_index(positives), minlength=self.num_bins)
        self._negative_hist += np.bincount(self.bin_index(negatives), minlength=self.num_bins)
        self.num_ignored += num_void
        self.num_frames += 1

    def merge(self, other: Evaluator[PixelMetrics]) -> None:
        """Add ``other``'s histograms (same binning required)."""
        self._check_mergeable(other, "score_range", "num_bins")
        assert isinstance(other, BinnedPixelEvaluator)
        self._positive_hist += other._positive_hist
        self._negative_hist += other._negative_hist
        self.num_ignored += other.num_ignored
        self.num_frames += other.num_frames
        self.num_clipped += other.num_clipped

    def _before_evaluate(self) -> None:
        if self.num_clipped:
            LOGGER.warning(
                "%d scores fell outside score_range %s and were clipped into the end bins; "
                "widen the range for accurate binned metrics",
                self.num_clipped,
                self.score_range,
            )

    def _table(self) -> tuple[OperatingPoints, float]:
        occupied = np.flatnonzero((self._positive_hist > 0) | (self._negative_hist > 0))[::-1]
        positives_at = self._positive_hist[occupied]
        negatives_at = self._negative_hist[occupied]
        num_positive = int(self._positive_hist.sum())
        num_negative = int(self._negative_hist.sum())
        true_positives = np.cumsum(positives_at)
        false_positives = np.cumsum(negatives_at)
        auroc = mann_whitney_auroc(
            positives_at,
            num_negative - false_positives,
            negatives_at,
            num_positive,
            num_negative,
        )
        points = OperatingPoints(
            thresholds=self._edges[occupied],
            true_positives=true_positives,
            false_positives=false_positives,
            num_positive=num_positive,
            num_negative=num_negative,
        )
        return points, auroc
