"""Component-level metrics of the Segment-Me-If-You-Can benchmark: sIoU, PPV, F1.

Per frame (conventions of the SMIYC ``MetricSegment``):

1. the predicted mask is ``score > threshold`` outside void (label 255);
2. ground-truth instances are the 8-connected components of label 1, predicted segments
   the 8-connected components of the mask; predicted segments smaller than
   ``min_prediction_size`` pixels are removed, and ground-truth instances smaller than
   ``min_instance_size`` become void;
3. everything is then restricted to the non-void region;
4. sIoU of a ground-truth instance ``A`` with the predicted segments ``K`` touching it is
   ``|A ∩ K| / |(A ∪ K) \\ other ground-truth instances|``; the sIoU of a predicted
   segment is defined symmetrically; its PPV is the fraction of its pixels on any
   ground-truth instance.

Over a dataset, at each sIoU threshold ``t`` in 0.25, 0.30, …, 0.75: TP = instances with
sIoU ≥ t, FN = instances with sIoU < t, FP = predicted segments with PPV < t, and
F1 = 2TP / (2TP + FN + FP); ``f1_mean`` averages the eleven F1 values.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.evaluator import Evaluator

#: sIoU thresholds of the benchmark (np.linspace(0.25, 0.75, 11), as SMIYC computes them).
SIOU_THRESHOLDS = tuple(float(value) for value in np.linspace(0.25, 0.75, 11))

#: (min_prediction_size, min_instance_size) of the two SMIYC tracks.
TRACK_SIZES = {"anomaly": (500, 100), "obstacle": (50, 10)}


@dataclass(frozen=True)
class FrameComponents:
    """Per-component values of one frame (1-D float64 arrays).

    :param siou_gt: sIoU of each ground-truth instance, in raster order of first pixel.
    :param siou_pred: sIoU of each predicted segment.
    :param ppv_pred: PPV of each predicted segment.
    :param gt_area: pixels of each ground-truth instance outside void (same order).
    """

    siou_gt: np.ndarray
    siou_pred: np.ndarray
    ppv_pred: np.ndarray
    gt_area: np.ndarray


@dataclass(frozen=True)
class ComponentMetrics:
    """Dataset-level component metrics; NaN where a mean or ratio has no members."""

    siou_gt: float
    siou_pred: float
    ppv: float
    f1: dict[float, float]
    f1_mean: float
    num_gt_instances: int
    num_pred_segments: int

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable values; F1 keys as ``f1_25`` … ``f1_75``."""
        values: dict[str, object] = {
            "siou_gt": self.siou_gt,
            "siou_pred": self.siou_pred,
            "ppv": self.ppv,
            "f1_mean": self.f1_mean,
            "num_gt_instances": self.num_gt_instances,
            "num_pred_segments": self.num_pred_segments,
        }
        values.update({f"f1_{round(t * 100)}": f1 for t, f1 in self.f1.items()})
        return values


def label_components(mask: np.ndarray, min_size: int = 0) -> np.ndarray:
    """8-connected components of ``mask``, dropping those under ``min_size`` pixels.

    :return: (H, W) int32, 0 = background, components numbered 1..K consecutively in the
        raster order of their first pixel (as ``scipy.ndimage.label`` numbers them).
    """
    # OpenCV, as the Detector's mask (no scipy at run time); its numbering order depends
    # on the algorithm, so renumber by first pixel to keep per-component lists stable.
    total, components = cv2.connectedComponents(
        np.ascontiguousarray(mask, dtype=np.uint8), connectivity=8, ltype=cv2.CV_32S
    )
    if total <= 1:
        return components
    flat = components.ravel()
    foreground = np.flatnonzero(flat)
    numbers, first = np.unique(flat[foreground], return_index=True)
    keep = np.ones(len(numbers), dtype=bool)
    if min_size > 0:
        keep = np.bincount(flat[foreground], minlength=total)[numbers] >= min_size
    by_first_pixel = np.argsort(first[keep], kind="stable")
    renumber = np.zeros(total, dtype=np.int32)
    renumber[numbers[keep][by_first_pixel]] = np.arange(1, len(by_first_pixel) + 1)
    return renumber[components]


def frame_components(
    prediction: np.ndarray, label: np.ndarray, min_prediction_size: int, min_instance_size: int
) -> FrameComponents:
    """sIoU and PPV of every ground-truth instance and predicted segment of one frame.

    :param prediction: (H, W) bool predicted anomaly mask.
    :param label: (H, W) uint8 labels 0/1/255.
    :raises InputError: shapes differ.
    """
    if prediction.shape != label.shape:
        raise InputError(f"mask {prediction.shape} and label {label.shape} differ in shape")
    void = label == 255
    predicted = label_components(prediction.astype(bool) & ~void, min_prediction_size)
    instances = label_components(label == 1)
    small = np.bincount(instances.ravel()) < min_instance_size
    small[0] = False
    region = ~void & ~small[instances]
    gt, pred = instances[region].astype(np.int64), predicted[region].astype(np.int64)
    num_gt, num_pred = int(instances.max(initial=0)), int(predicted.max(initial=0))
    gt_size = np.bincount(gt, minlength=num_gt + 1)
    pred_size = np.bincount(pred, minlength=num_pred + 1)
    # Sparse contingency table over pixels that are on an instance and a segment.
    both = (gt > 0) & (pred > 0)
    pairs, overlap = np.unique(gt[both] * (num_pred + 1) + pred[both], return_counts=True)
    pair_gt, pair_pred = pairs // (num_pred + 1), pairs % (num_pred + 1)
    gt_covered = np.bincount(pair_pred, weights=overlap, minlength=num_pred + 1)
    pred_covered = np.bincount(pair_gt, weights=overlap, minlength=num_gt + 1)
    # Union of A with its segments K, minus pixels of K on other instances:
    # |A| + Σ_{j∈K} (|j| − |j ∩ any instance|).
    gt_union = gt_size + np.bincount(
        pair_gt, weights=pred_size[pair_pred] - gt_covered[pair_pred], minlength=num_gt + 1
    )
    pred_union = pred_size + np.bincount(
        pair_pred, weights=gt_size[pair_gt] - pred_covered[pair_gt], minlength=num_pred + 1
    )
    gt_present = np.flatnonzero(gt_size[1:]) + 1
    pred_present = np.flatnonzero(pred_size[1:]) + 1
    return FrameComponents(
        siou_gt=pred_covered[gt_present] / gt_union[gt_present],
        siou_pred=gt_covered[pred_present] / pred_union[pred_present],
        ppv_pred=gt_covered[pred_present] / pred_size[pred_present],
        gt_area=gt_size[gt_present].astype(np.float64),
    )


class ComponentEvaluator(Evaluator[ComponentMetrics]):
    """Accumulates per-component values over frames; ``process`` thresholds a score map.

    :param threshold: a pixel is predicted anomalous when ``score > threshold``.
    :param min_prediction_size: smaller predicted segments are removed (SMIYC: 500
        AnomalyTrack, 50 ObstacleTrack).
    :param min_instance_size: smaller ground-truth instances become void (100 / 10).
    """

    def __init__(
        self, threshold: float, min_prediction_size: int = 500, min_instance_size: int = 100
    ) -> None:
        self.threshold = float(threshold)
        self.min_prediction_size = int(min_prediction_size)
        self.min_instance_size = int(min_instance_size)
        self.reset()

    def reset(self) -> None:
        """Forget every processed frame."""
        self.frames: list[FrameComponents] = []

    def process(self, score: np.ndarray, label: np.ndarray) -> FrameComponents:
        """Add one frame from its (H, W) anomaly score and 0/1/255 labels."""
        return self.process_mask(np.asarray(score) > self.threshold, label)

    def process_mask(self, mask: np.ndarray, label: np.ndarray) -> FrameComponents:
        """Add one frame from an already thresholded (H, W) bool mask."""
        frame = frame_components(
            np.asarray(mask), np.asarray(label), self.min_prediction_size, self.min_instance_size
        )
        self.frames.append(frame)
        return frame

    def merge(self, other: Evaluator[ComponentMetrics]) -> None:
        """Add ``other``'s frames after this one's (same threshold and sizes required)."""
        self._check_mergeable(other, "threshold", "min_prediction_size", "min_instance_size")
        assert isinstance(other, ComponentEvaluator)
        self.frames.extend(other.frames)

    def evaluate(self) -> ComponentMetrics:
        """sIoU, PPV and F1 over every frame processed since :meth:`reset`."""
        siou_gt = _joined([frame.siou_gt for frame in self.frames])
        siou_pred = _joined([frame.siou_pred for frame in self.frames])
        ppv = _joined([frame.ppv_pred for frame in self.frames])
        f1 = {}
        for threshold in SIOU_THRESHOLDS:
            true_pos = int(np.count_nonzero(siou_gt >= threshold))
            false_neg = len(siou_gt) - true_pos
            false_pos = int(np.count_nonzero(ppv < threshold))
            denominator = 2 * true_pos + false_neg + false_pos
            f1[threshold] = 2 * true_pos / denominator if denominator else float("nan")
        return ComponentMetrics(
            siou_gt=_mean(siou_gt),
            siou_pred=_mean(siou_pred),
            ppv=_mean(ppv),
            f1=f1,
            f1_mean=float(np.mean(list(f1.values()))),
            num_gt_instances=len(siou_gt),
            num_pred_segments=len(ppv),
        )


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")
