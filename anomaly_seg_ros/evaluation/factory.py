"""Evaluators by name: one place that knows every kind (see :mod:`.evaluator`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.binned_pixel_metrics import BinnedPixelEvaluator
from anomaly_seg_ros.evaluation.component_metrics import ComponentEvaluator
from anomaly_seg_ros.evaluation.evaluator import Evaluator
from anomaly_seg_ros.evaluation.pixel_metrics import (
    ExactPixelEvaluator,
    PixelEvaluator,
    PixelMetrics,
)
from anomaly_seg_ros.evaluation.segmentation_metrics import SegmentationEvaluator

#: Pixel-metric ``mode`` → evaluator class.
PIXEL_EVALUATORS: dict[str, type[PixelEvaluator]] = {
    "exact": ExactPixelEvaluator,
    "binned": BinnedPixelEvaluator,
}
#: Evaluator kind → class.
EVALUATORS: dict[str, type[Evaluator[Any]]] = {
    **PIXEL_EVALUATORS,
    "segmentation": SegmentationEvaluator,
    "component": ComponentEvaluator,
}


def create_evaluator(kind: str, **options: Any) -> Evaluator[Any]:
    """An evaluator of ``kind`` built with ``options`` (the class's keyword arguments).

    :param kind: ``exact`` / ``binned`` (pixel metrics), ``segmentation`` (IoU, mIoU) or
        ``component`` (sIoU, PPV, F1; needs ``threshold``).
    :raises InputError: unknown ``kind``.
    """
    if kind not in EVALUATORS:
        raise InputError(f"unknown evaluator {kind!r}; valid: {', '.join(EVALUATORS)}")
    return EVALUATORS[kind](**options)


def create_pixel_evaluator(mode: str = "exact", **options: Any) -> PixelEvaluator:
    """An exact or binned pixel evaluator; ``options`` go to the binned one.

    :raises InputError: unknown ``mode``.
    """
    if mode not in PIXEL_EVALUATORS:
        valid = ", ".join(PIXEL_EVALUATORS)
        raise InputError(f"unknown pixel-metric mode {mode!r}; valid: {valid}")
    return PIXEL_EVALUATORS[mode](**options)


def pixel_metrics(score: np.ndarray, label: np.ndarray, mode: str = "exact") -> PixelMetrics:
    """Metrics of one score array against one label array (any matching shapes).

    :param score: float anomaly scores, higher = more anomalous.
    :param label: uint8 labels 0/1/255, same shape.
    :param mode: ``exact`` or ``binned`` (default bins, see ``BinnedPixelEvaluator``).
    :raises InputError: see :func:`~.pixel_metrics.split_by_label`; unknown ``mode``.
    """
    evaluator = create_pixel_evaluator(mode)
    evaluator.process(score, label)
    return evaluator.evaluate()
