"""Validation mIoU of a torch segmentation network on a Cityscapes-layout split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from anomaly_seg_ros.datasets.cityscapes import CityscapesDataset
from anomaly_seg_ros.evaluation.segmentation_metrics import (
    SegmentationEvaluator,
    SegmentationMetrics,
)
from training.distributed import DistributedContext, all_reduce_sum
from training.seg_dataset import to_tensor


@dataclass(frozen=True)
class ValMetrics:
    """Segmentation metrics plus the mIoU over classes present in the ground truth.

    :param metrics: the evaluator's result (IoU NaN for classes absent everywhere).
    :param miou_present: mean IoU over classes with ground-truth pixels; a class that is
        only predicted (never in the labels) does not count, which is the fair number for
        a world without trains and motorcycles.
    :param frames: number of validation frames.
    """

    metrics: SegmentationMetrics
    miou_present: float
    frames: int

    @property
    def miou(self) -> float:
        return self.metrics.miou

    def summary(self) -> dict[str, Any]:
        """JSON-able: mIoU, mIoU over present classes, accuracy, per-class IoU."""
        iou = {
            name: (None if np.isnan(value) else round(value, 4))
            for name, value in zip(self.metrics.class_names, self.metrics.iou)
        }
        return {
            "miou": round(self.metrics.miou, 4),
            "miou_present": round(self.miou_present, 4),
            "pixel_accuracy": round(self.metrics.pixel_accuracy, 4),
            "frames": self.frames,
            "iou": iou,
        }


def metrics_from_confusion(confusion: np.ndarray, class_names: tuple[str, ...]) -> ValMetrics:
    """Build :class:`ValMetrics` from an accumulated (C+1, C+1) confusion matrix."""
    evaluator = SegmentationEvaluator(class_names)
    evaluator.confusion = confusion.astype(np.int64)
    metrics = evaluator.evaluate()
    present = confusion[: len(class_names)].sum(axis=1) > 0
    iou = np.asarray(metrics.iou)
    miou_present = float(np.nanmean(iou[present])) if present.any() else float("nan")
    return ValMetrics(metrics, miou_present, 0)


@torch.inference_mode()
def predict(network: torch.nn.Module, image: np.ndarray, device: torch.device) -> np.ndarray:
    """(H, W) uint8 predicted train ids of one RGB frame at its own size."""
    batch = to_tensor(image)[None].to(device)
    logits = network(batch)
    logits = F.interpolate(
        logits,
        size=image.shape[:2],
        mode="bilinear",
        align_corners=bool(getattr(network, "align_corners", False)),
    )
    return logits.argmax(1)[0].to(torch.uint8).cpu().numpy()


def evaluate_network(
    network: torch.nn.Module,
    frames: CityscapesDataset,
    context: DistributedContext,
    limit: int | None = None,
) -> ValMetrics:
    """Evaluate on (up to ``limit``) frames, each process taking every world_size-th frame.

    :return: metrics over all frames (identical on every process).
    """
    module = getattr(network, "module", network)
    was_training = module.training
    module.eval()
    count = len(frames) if limit is None else min(limit, len(frames))
    evaluator = SegmentationEvaluator(frames.class_names)
    for index in range(context.rank, count, context.world_size):
        image, label = frames[index]
        evaluator.process(predict(module, image, context.device), label)
    summed = all_reduce_sum(torch.from_numpy(evaluator.confusion).to(context.device), context)
    confusion = summed.cpu().numpy()
    module.train(was_training)
    result = metrics_from_confusion(confusion, frames.class_names)
    return ValMetrics(result.metrics, result.miou_present, count)
