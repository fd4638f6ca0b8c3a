"""Cached penultimate features: head-only fine-tuning without re-running the frozen network.

With the backbone, the decoder and every BatchNorm frozen in eval mode, the input of
``network.final_conv`` is a fixed function of the input image. For a fixed set of training
samples (augmentation drawn once) and evaluation frames, it is computed once here; every
fine-tuning variant then trains and evaluates only the 1×1 classifier on these features.
This is exactly head-only fine-tuning for those samples; what it gives up is re-drawing
the augmentation (and AnomalyMix) every epoch, and MGU is applied once with the base model
instead of online. The synthetic-world experiment uses it to fit 8+ variants into a
40-minute CPU budget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anomaly_seg_ros.evaluation.factory import create_pixel_evaluator
from anomaly_seg_ros.evaluation.segmentation_metrics import SegmentationEvaluator
from anomaly_seg_ros.model.summary import OUTPUT_NAMES, LogitSummary
from anomaly_seg_ros.networks.head import summarize
from anomaly_seg_ros.pipeline.scores import compute_score
from training.finetune_data import FrameSource
from training.finetune_setup import final_conv
from training.seg_dataset import to_tensor
from training.seg_eval import metrics_from_confusion


@dataclass
class FeatureSet:
    """Features (N, F, h, w) float16 and labels (N, H, W) uint8 of N samples."""

    features: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.features.shape[0]


@torch.no_grad()
def penultimate(network: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Input of ``network.final_conv`` for a normalized batch, float16 on the CPU."""
    captured: list[torch.Tensor] = []
    handle = final_conv(network).register_forward_hook(
        lambda module, inputs, output: captured.append(inputs[0])
    )
    try:
        network.eval()(images)
    finally:
        handle.remove()
    return captured[0].half().cpu()


def cache_batches(
    network: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> FeatureSet:
    """Run ``(images, labels)`` batches through the frozen network and keep the features."""
    features, labels = [], []
    for images, batch_labels in batches:
        features.append(penultimate(network, images))
        labels.append(batch_labels.to(torch.uint8))
    return FeatureSet(torch.cat(features), torch.cat(labels))


def cache_frames(
    network: nn.Module,
    frames: FrameSource,
    mean: Sequence[float],
    std: Sequence[float],
    count: int | None = None,
) -> FeatureSet:
    """Features of whole evaluation frames (one at a time, at their own size)."""
    count = len(frames) if count is None else min(count, len(frames))

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for index in range(count):
            image, label = frames.read(index)
            yield to_tensor(image, mean, std)[None], torch.from_numpy(label[None].copy())

    return cache_batches(network, batches())


def logit_summary(logits: torch.Tensor) -> LogitSummary:
    """The anomaly head's summary of (1, C, H, W) float32 logits (its own code)."""
    maps = summarize(logits)
    return LogitSummary.from_outputs({n: m.numpy() for n, m in zip(OUTPUT_NAMES, maps)})


@torch.no_grad()
def evaluate_head(
    head: Callable[[torch.Tensor], torch.Tensor],
    align_corners: bool,
    class_names: tuple[str, ...],
    val: FeatureSet | None,
    anomaly: FeatureSet | None,
    scores: tuple[str, ...],
) -> dict[str, float]:
    """mIoU (all / present classes) on ``val``; AP, AUROC, FPR95 per score on ``anomaly``."""
    record: dict[str, float] = {}

    def summaries(features: FeatureSet) -> Iterator[tuple[LogitSummary, np.ndarray]]:
        for index in range(len(features)):
            label = features.labels[index].numpy()
            logits = head(features.features[index : index + 1].float())
            logits = F.interpolate(
                logits, size=label.shape, mode="bilinear", align_corners=align_corners
            )
            yield logit_summary(logits), label

    if val is not None:
        evaluator = SegmentationEvaluator(class_names)
        for summary, label in summaries(val):
            evaluator.process(summary.label, label)
        metrics = metrics_from_confusion(evaluator.confusion, class_names)
        record["miou"], record["miou_present"] = metrics.miou, metrics.miou_present
    if anomaly is not None:
        pixel_evaluators = {name: create_pixel_evaluator("exact") for name in scores}
        for summary, label in summaries(anomaly):
            for name, pixels in pixel_evaluators.items():
                pixels.process(compute_score(name, summary), label)
        for name, pixels in pixel_evaluators.items():
            result = pixels.evaluate()
            record[f"{name}/ap"] = result.average_precision
            record[f"{name}/auroc"] = result.auroc
            record[f"{name}/fpr95"] = result.fpr_at_95_tpr
    return record


def sample_order(count: int, batch: int, steps: int, seed: int) -> np.ndarray:
    """(steps, batch) sample indices: shuffled epochs back to back, like a RandomSampler."""
    rng = np.random.default_rng(seed)
    needed = steps * batch
    order = np.concatenate([rng.permutation(count) for _ in range(-(-needed // count))])
    return order[:needed].reshape(steps, batch)
