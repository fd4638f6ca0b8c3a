"""Closed-set segmentation quality of the Detector on Cityscapes val: IoU per class, mIoU.

The anomaly head must not cost in-distribution accuracy; this runs the Detector over a
Cityscapes-layout split (the real dataset or the synthetic world) with the reader of
:mod:`anomaly_seg_ros.datasets.cityscapes` and writes ``results.json`` and ``results.md``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from anomaly_seg_ros.evaluation.segmentation_metrics import (
    SegmentationEvaluator,
    SegmentationMetrics,
)


def evaluate_segmentation(
    detector: Any, dataset: Any, limit: int | None = None, progress: bool = True
) -> SegmentationMetrics:
    """Confusion matrix of the Detector's labels against the train-ID ground truth.

    :param detector: an :class:`anomaly_seg_ros.detector.Detector`.
    :param dataset: a :class:`~anomaly_seg_ros.datasets.cityscapes.CityscapesDataset`.
    :param limit: evaluate only the first ``limit`` frames.
    """
    from tqdm import tqdm

    evaluator = SegmentationEvaluator(tuple(detector.info.class_names))
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for index in tqdm(range(count), desc="segmentation", unit="frame", disable=not progress):
        rgb, train_ids = dataset[index]
        evaluator.process(detector.detect(rgb).labels, train_ids)
    return evaluator.evaluate()


def write_segmentation_report(
    metrics: SegmentationMetrics, out_dir: str | Path, dataset: str, settings: dict[str, Any]
) -> Path:
    """``results.json`` (IoU per class, mIoU, confusion matrix) and ``results.md``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def plain(value: float) -> float | None:
        return value if math.isfinite(value) else None

    document = {
        "dataset": dataset,
        "settings": settings,
        "miou": plain(metrics.miou),
        "pixel_accuracy": plain(metrics.pixel_accuracy),
        "iou": {name: plain(value) for name, value in zip(metrics.class_names, metrics.iou)},
        "confusion": metrics.confusion.tolist(),
    }
    (out_dir / "results.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    lines = [
        f"# Segmentation evaluation: {dataset}",
        "",
        f"mIoU **{100 * metrics.miou:.2f}** %, pixel accuracy {100 * metrics.pixel_accuracy:.2f}"
        " % (classes absent from ground truth and prediction are left out of the mean).",
        "",
        "| class | IoU % |",
        "|---|---|",
    ]
    for name, value in zip(metrics.class_names, metrics.iou):
        lines.append(f"| {name} | {'–' if math.isnan(value) else f'{100 * value:.2f}'} |")
    (out_dir / "results.md").write_text("\n".join(lines) + "\n")
    return out_dir
