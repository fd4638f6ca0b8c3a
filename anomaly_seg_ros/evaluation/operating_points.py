"""Detection counts at a descending list of thresholds, and the metrics read from them.

Both pixel evaluators (exact and binned) reduce a dataset to an :class:`OperatingPoints`
table; AP, FPR at a target TPR, the best F1 and the plotted curves are then computed by the
same code, so the two modes differ only in which thresholds the table holds.

Convention: at threshold ``t`` a pixel is predicted anomalous when ``score >= t`` (the
convention of scikit-learn's ``roc_curve``). The ROS node masks with ``score > threshold``;
:func:`strict_threshold` converts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OperatingPoints:
    """Cumulative counts at strictly descending thresholds.

    :param thresholds: (K,) float64, strictly descending.
    :param true_positives: (K,) int64, positives with ``score >= thresholds[k]``.
    :param false_positives: (K,) int64, negatives with ``score >= thresholds[k]``.
    :param num_positive: anomalous (label 1) pixels in the dataset.
    :param num_negative: in-distribution (label 0) pixels in the dataset.
    """

    thresholds: np.ndarray
    true_positives: np.ndarray
    false_positives: np.ndarray
    num_positive: int
    num_negative: int

    @property
    def tpr(self) -> np.ndarray:
        """(K,) float64 true-positive rate (= recall); NaN without positives."""
        if self.num_positive == 0:
            return np.full(len(self.thresholds), np.nan)
        return self.true_positives / float(self.num_positive)

    @property
    def fpr(self) -> np.ndarray:
        """(K,) float64 false-positive rate; NaN without negatives."""
        if self.num_negative == 0:
            return np.full(len(self.thresholds), np.nan)
        return self.false_positives / float(self.num_negative)

    @property
    def precision(self) -> np.ndarray:
        """(K,) float64 precision; 1 where nothing is predicted positive yet (SMIYC guard)."""
        predicted = self.true_positives + self.false_positives
        precision = np.ones(len(self.thresholds), dtype=np.float64)
        nonzero = predicted > 0
        precision[nonzero] = self.true_positives[nonzero] / predicted[nonzero]
        return precision

    def average_precision(self) -> float:
        """Step-sum AP, Σ_k (R_k − R_{k−1}) P_k with R_0 = 0, as scikit-learn computes it.

        :return: AP in [0, 1]; NaN without positives.
        """
        if self.num_positive == 0 or len(self.thresholds) == 0:
            return float("nan")
        recall_steps = np.diff(self.true_positives, prepend=0) / float(self.num_positive)
        return float(np.sum(recall_steps * self.precision))

    def at_tpr(self, target: float = 0.95) -> tuple[float, float, float]:
        """The highest threshold whose TPR reaches ``target`` (no interpolation).

        This is ``fpr[np.searchsorted(tpr, target)]`` on scikit-learn's
        ``roc_curve(..., drop_intermediate=False)`` and the Segment-Me-If-You-Can convention.

        :param target: TPR in (0, 1].
        :return: (fpr, tpr, threshold) at that point; NaNs when nothing reaches it.
        """
        tpr = self.tpr
        index = int(np.searchsorted(tpr, target, side="left")) if self.num_positive else len(tpr)
        if index >= len(tpr):
            return float("nan"), float("nan"), float("nan")
        return float(self.fpr[index]), float(tpr[index]), float(self.thresholds[index])

    def at_fpr(self, target: float) -> tuple[float, float, float]:
        """The lowest threshold in the table whose FPR stays at or below ``target``.

        :param target: FPR in [0, 1].
        :return: (fpr, tpr, threshold); threshold +inf (nothing positive) when even the
            highest threshold exceeds the target.
        """
        fpr = self.fpr
        index = int(np.searchsorted(fpr, target, side="right")) - 1
        if index < 0:
            return 0.0, 0.0, float("inf")
        return float(fpr[index]), float(self.tpr[index]), float(self.thresholds[index])

    def best_f1(self) -> tuple[float, float]:
        """The maximum pixel F1 = 2TP / (2TP + FP + FN) over the table's thresholds.

        :return: (f1, threshold); the highest threshold among equal maxima. NaNs when empty.
        """
        if self.num_positive == 0 or len(self.thresholds) == 0:
            return float("nan"), float("nan")
        f1 = (
            2.0
            * self.true_positives
            / (self.true_positives + self.false_positives + self.num_positive)
        )
        index = int(np.argmax(f1))
        return float(f1[index]), float(self.thresholds[index])

    def downsample(self, max_points: int = 512) -> OperatingPoints:
        """A table of at most about ``2 * max_points`` rows for plotting.

        Keeps rows evenly spaced in recall and in FPR, plus the first and last row.
        """
        count = len(self.thresholds)
        if count <= 2 * max_points:
            return self
        grid = np.linspace(0.0, 1.0, max_points)
        picks = [np.array([0, count - 1])]
        for rate in (self.tpr, self.fpr):
            if not np.isnan(rate).any():
                picks.append(np.searchsorted(rate, grid, side="left"))
        index = np.unique(np.clip(np.concatenate(picks), 0, count - 1))
        return OperatingPoints(
            thresholds=self.thresholds[index],
            true_positives=self.true_positives[index],
            false_positives=self.false_positives[index],
            num_positive=self.num_positive,
            num_negative=self.num_negative,
        )


def mann_whitney_auroc(
    positives_at: np.ndarray,
    negatives_below: np.ndarray,
    negatives_equal: np.ndarray,
    num_positive: int,
    num_negative: int,
) -> float:
    """AUROC as P(score_pos > score_neg) + ½ P(equal), in exact integer arithmetic.

    Equals the trapezoidal area under the full ROC curve (so scikit-learn's
    ``roc_auc_score``) for any tie structure.

    :param positives_at: (K,) positives at each distinct level.
    :param negatives_below: (K,) negatives strictly below each level.
    :param negatives_equal: (K,) negatives tied with each level.
    :return: AUROC in [0, 1]; NaN when a class is empty.
    """
    if num_positive == 0 or num_negative == 0:
        return float("nan")
    positives_at = positives_at.astype(np.int64, copy=False)
    # 2·(below + ½·equal) keeps everything integral; the total is ≤ 2·P·N < 2^63 for any
    # dataset below ~2·10^9 pixels.
    doubled = int(np.dot(positives_at, 2 * negatives_below.astype(np.int64) + negatives_equal))
    return doubled / (2.0 * num_positive * num_negative)


def strict_threshold(threshold: float, dtype: np.dtype | type = np.float32) -> float:
    """The threshold ``t'`` with ``score > t'`` ⇔ ``score >= threshold`` for ``dtype`` scores.

    :param threshold: a threshold in this module's ``>=`` convention.
    :param dtype: the floating dtype of the score maps the mask is taken from.
    :return: the next representable value below ``threshold`` (as a Python float).
    """
    value = np.asarray(threshold, dtype=dtype)
    return float(np.nextafter(value, np.asarray(-np.inf, dtype=dtype)))
