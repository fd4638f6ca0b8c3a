"""Semantic-segmentation metrics: int64 confusion matrix, per-class IoU, mIoU.

Conventions follow ``cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling``:
ground-truth pixels outside the C classes (train ID 255, or anything ≥ C) are ignored;
predictions outside the C classes on valid ground truth count as false negatives of the
true class; a class's IoU is NaN when it appears in neither ground truth nor prediction
(over valid pixels), and mIoU averages the non-NaN IoUs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.evaluator import Evaluator
from anomaly_seg_ros.model.classes import CITYSCAPES_CLASSES


@dataclass(frozen=True)
class SegmentationMetrics:
    """Result of :class:`SegmentationEvaluator`.

    :param class_names: names, index = train ID.
    :param iou: per-class IoU; NaN for classes absent from ground truth and prediction.
    :param miou: mean of the non-NaN IoUs (NaN when all are NaN).
    :param pixel_accuracy: correct / valid ground-truth pixels.
    :param confusion: (C+1, C+1) int64, rows = ground truth, columns = prediction; the last
        row/column is the ignore bucket.
    """

    class_names: tuple[str, ...]
    iou: tuple[float, ...]
    miou: float
    pixel_accuracy: float
    confusion: np.ndarray

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable values (NaN stays a float NaN)."""
        return {
            "miou": self.miou,
            "pixel_accuracy": self.pixel_accuracy,
            "iou": dict(zip(self.class_names, self.iou)),
        }


class SegmentationEvaluator(Evaluator[SegmentationMetrics]):
    """Accumulates a confusion matrix over frames with one ``bincount`` per frame.

    :param class_names: the evaluated classes, index = train ID (default: Cityscapes 19).
    """

    def __init__(self, class_names: tuple[str, ...] = CITYSCAPES_CLASSES) -> None:
        self.class_names = tuple(class_names)
        self.num_classes = len(self.class_names)
        self.reset()

    def reset(self) -> None:
        """Forget every processed frame."""
        size = self.num_classes + 1
        self.confusion = np.zeros((size, size), dtype=np.int64)

    def process(self, prediction: np.ndarray, label: np.ndarray) -> None:
        """Add one frame.

        :param prediction: (H, W) integer predicted train IDs.
        :param label: (H, W) integer ground-truth train IDs, 255 (or ≥ C) = ignore.
        :raises InputError: shapes differ or the maps are not integer.
        """
        prediction = np.asarray(prediction)
        label = np.asarray(label)
        if prediction.shape != label.shape:
            raise InputError(
                f"prediction {prediction.shape} and label {label.shape} differ in shape; "
                "resize the prediction to the label size with nearest-neighbour interpolation"
            )
        for name, array in (("prediction", prediction), ("label", label)):
            if not np.issubdtype(array.dtype, np.integer):
                raise InputError(f"{name} must hold integer train IDs, got {array.dtype}")
        bucket = self.num_classes
        # Everything outside [0, C) goes to the ignore bucket; int64 so that the encoded
        # index gt·(C+1) + pred cannot overflow.
        truth = np.where((label >= 0) & (label < bucket), label, bucket).astype(np.int64)
        guess = np.where((prediction >= 0) & (prediction < bucket), prediction, bucket)
        encoded = truth * (bucket + 1) + guess
        counts = np.bincount(encoded.ravel(), minlength=(bucket + 1) ** 2)
        self.confusion += counts.reshape(bucket + 1, bucket + 1)

    def merge(self, other: Evaluator[SegmentationMetrics]) -> None:
        """Add ``other``'s confusion matrix (same classes required)."""
        self._check_mergeable(other, "class_names")
        assert isinstance(other, SegmentationEvaluator)
        self.confusion += other.confusion

    def evaluate(self) -> SegmentationMetrics:
        """IoU per class and mIoU over every frame processed since :meth:`reset`."""
        classes = self.num_classes
        valid_rows = self.confusion[:classes]
        true_positives = np.diag(valid_rows[:, :classes]).astype(np.float64)
        # Row sums include predictions in the ignore bucket (false negatives); column sums
        # exclude ignored ground truth, as cityscapesscripts does.
        ground_truth = valid_rows.sum(axis=1)
        predicted = valid_rows[:, :classes].sum(axis=0)
        union = ground_truth + predicted - true_positives
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, true_positives / union, np.nan)
        valid_total = int(ground_truth.sum())
        miou = float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")
        accuracy = float(true_positives.sum() / valid_total) if valid_total else float("nan")
        return SegmentationMetrics(
            class_names=self.class_names,
            iou=tuple(float(value) for value in iou),
            miou=miou,
            pixel_accuracy=accuracy,
            confusion=self.confusion.copy(),
        )
