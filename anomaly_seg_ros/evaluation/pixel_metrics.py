"""Pixel-level OoD metrics over all pixels of a dataset: AUROC, AP, FPR@95%TPR, best F1.

Anomalous pixels (label 1) are the positive class, in-distribution pixels (label 0) the
negative class, and label 255 (void) is ignored. Two :class:`PixelEvaluator` s share one
``evaluate()``, and differ in how they keep the scores:

* :class:`ExactPixelEvaluator` keeps every valid score and sorts once; its AUROC and AP
  equal scikit-learn's ``roc_auc_score`` / ``average_precision_score`` (ties included).
* :class:`~anomaly_seg_ros.evaluation.binned_pixel_metrics.BinnedPixelEvaluator` keeps two
  fixed-bin histograms, so its memory does not grow with the number of pixels.

FPR@95%TPR is the FPR at the highest threshold whose TPR is ≥ 0.95, without interpolation
(see :meth:`OperatingPoints.at_tpr`).
"""

from __future__ import annotations

import abc
import logging
from dataclasses import asdict, dataclass

import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.evaluator import Evaluator
from anomaly_seg_ros.evaluation.operating_points import OperatingPoints, mann_whitney_auroc

LOGGER = logging.getLogger(__name__)

#: Label values: 0 = in-distribution, 1 = anomaly, 255 = void (ignored).
IGNORE_LABEL = 255


@dataclass(frozen=True)
class PixelMetrics:
    """Pixel metrics of one score over one dataset; thresholds use ``score >= t``."""

    auroc: float
    average_precision: float
    fpr_at_95_tpr: float
    threshold_at_95_tpr: float
    best_f1: float
    best_f1_threshold: float
    num_positive: int
    num_negative: int
    num_ignored: int
    num_frames: int
    mode: str

    def to_dict(self) -> dict[str, float | int | str]:
        """Plain JSON-serialisable values."""
        return asdict(self)


def split_by_label(score: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Check one frame and split its scores into anomalous and in-distribution pixels.

    :param score: (H, W) floating anomaly score, higher = more anomalous; no NaN.
    :param label: (H, W) integer labels in {0, 1, 255}.
    :return: (scores at label 1, scores at label 0, number of void pixels); float32 unless
        ``score`` is float64.
    :raises InputError: shape mismatch, NaN scores, or label values outside {0, 1, 255}.
    """
    score = np.asarray(score)
    label = np.asarray(label)
    if score.shape != label.shape:
        raise InputError(
            f"score map {score.shape} and label map {label.shape} differ in shape; resize the "
            "score to the label resolution (bilinear) before evaluating"
        )
    if not (np.issubdtype(label.dtype, np.integer) or label.dtype == np.bool_):
        raise InputError(f"labels must be an integer array (uint8 0/1/255), got {label.dtype}")
    if score.dtype != np.float64:
        score = score.astype(np.float32, copy=False)
    if np.isnan(score).any():
        raise InputError("score map contains NaN; fix the scoring function or mask those pixels")
    anomalous = label == 1
    normal = label == 0
    num_void = label.size - int(np.count_nonzero(anomalous)) - int(np.count_nonzero(normal))
    if num_void and np.count_nonzero(label == IGNORE_LABEL) != num_void:
        bad = np.setdiff1d(np.unique(label), [0, 1, IGNORE_LABEL])
        raise InputError(
            f"label values {bad.tolist()} are not 0 (in-distribution), 1 (anomaly) or 255 "
            "(void); convert the ground truth to that encoding"
        )
    return score[anomalous], score[normal], num_void


class PixelEvaluator(Evaluator[PixelMetrics]):
    """Pixel metrics from a table of operating points; subclasses say how it is kept."""

    mode = "base"
    num_ignored: int
    num_frames: int

    def operating_points(self) -> OperatingPoints:
        """Counts at every candidate threshold, descending.

        Exact: every distinct anomalous-pixel score (thresholds between those values only
        add false positives, so this table is enough for AP, best F1 and FPR at a target
        TPR); binned: every non-empty bin's lower edge.
        """
        return self._table()[0]

    def evaluate(self) -> PixelMetrics:
        """Metrics over every frame processed since :meth:`reset`."""
        self._before_evaluate()
        points, auroc = self._table()
        fpr95, _, threshold95 = points.at_tpr(0.95)
        best_f1, best_threshold = points.best_f1()
        if points.num_positive == 0 or points.num_negative == 0:
            LOGGER.warning(
                "pixel metrics undefined: %d anomalous and %d in-distribution pixels",
                points.num_positive,
                points.num_negative,
            )
        return PixelMetrics(
            auroc=auroc,
            average_precision=points.average_precision(),
            fpr_at_95_tpr=fpr95,
            threshold_at_95_tpr=threshold95,
            best_f1=best_f1,
            best_f1_threshold=best_threshold,
            num_positive=points.num_positive,
            num_negative=points.num_negative,
            num_ignored=self.num_ignored,
            num_frames=self.num_frames,
            mode=self.mode,
        )

    def _before_evaluate(self) -> None:
        """A hook for warnings about the accumulated frames."""

    @abc.abstractmethod
    def _table(self) -> tuple[OperatingPoints, float]:
        """(operating points, AUROC) over the frames processed so far."""


class ExactPixelEvaluator(PixelEvaluator):
    """Exact pixel metrics: keeps every valid score (4 bytes each), sorts once at the end.

    Memory: about 8 bytes per valid pixel at :meth:`evaluate` (the kept scores plus one
    concatenated copy), i.e. ~1.6 GB for the 2·10⁸ pixels of Fishyscapes Lost & Found.
    """

    mode = "exact"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every processed frame."""
        self._positive_parts: list[np.ndarray] = []
        self._negative_parts: list[np.ndarray] = []
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None
        self.num_ignored = 0
        self.num_frames = 0

    def process(self, score: np.ndarray, label: np.ndarray) -> None:
        """Add one frame.

        :param score: (H, W) float anomaly score, higher = more anomalous.
        :param label: (H, W) uint8 labels 0/1/255.
        :raises InputError: see :func:`split_by_label`.
        """
        positives, negatives, num_void = split_by_label(score, label)
        self._positive_parts.append(positives)
        self._negative_parts.append(negatives)
        self._sorted = None
        self.num_ignored += num_void
        self.num_frames += 1

    def merge(self, other: Evaluator[PixelMetrics]) -> None:
        """Add ``other``'s kept scores: the metrics equal one evaluator's over all frames
        (they come from the sorted scores, so the order of the frames does not matter).
        """
        self._check_mergeable(other)
        assert isinstance(other, ExactPixelEvaluator)
        self._positive_parts.extend(other._positive_parts)
        self._negative_parts.extend(other._negative_parts)
        self._sorted = None
        self.num_ignored += other.num_ignored
        self.num_frames += other.num_frames

    def sorted_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """Ascending scores of all anomalous and all in-distribution pixels (cached)."""
        if self._sorted is None:
            # Concatenate, drop the per-frame parts, sort in place: peak memory is two copies.
            positives = _concatenate(self._positive_parts)
            negatives = _concatenate(self._negative_parts)
            self._positive_parts = [positives]
            self._negative_parts = [negatives]
            positives.sort()
            negatives.sort()
            self._sorted = (positives, negatives)
        return self._sorted

    def _table(self) -> tuple[OperatingPoints, float]:
        positives, negatives = self.sorted_scores()
        num_positive, num_negative = len(positives), len(negatives)
        if num_positive:
            is_first = np.empty(num_positive, dtype=bool)
            is_first[0] = True
            np.not_equal(positives[1:], positives[:-1], out=is_first[1:])
            starts = np.flatnonzero(is_first)
            levels = positives[starts]
        else:
            starts = np.zeros(0, dtype=np.int64)
            levels = positives
        positives_at = np.diff(starts, append=num_positive)
        negatives_below = np.searchsorted(negatives, levels, side="left")
        negatives_equal = np.searchsorted(negatives, levels, side="right") - negatives_below
        auroc = mann_whitney_auroc(
            positives_at, negatives_below, negatives_equal, num_positive, num_negative
        )
        points = OperatingPoints(
            thresholds=levels[::-1].astype(np.float64),
            true_positives=(num_positive - starts[::-1]).astype(np.int64),
            false_positives=(num_negative - negatives_below[::-1]).astype(np.int64),
            num_positive=num_positive,
            num_negative=num_negative,
        )
        return points, auroc


def _concatenate(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype=np.float32)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts)
