"""Evaluate every score of a stream of frames: pixel, per-frame and component metrics.

Pass 1 feeds each score map to its pixel evaluator, computes per-frame AP/AUROC, and caches
the maps (and labels) as ``.npy`` in a work folder. Pass 2 reads the cache back to compute
the component metrics at each score's best-F1 threshold (the Segment-Me-If-You-Can
default), which is only known after pass 1. The cache costs 4 bytes per pixel and score on
disk; pass ``work_dir=None`` to skip component metrics and the cache.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anomaly_seg_ros.evaluation.component_metrics import ComponentEvaluator, ComponentMetrics
from anomaly_seg_ros.evaluation.evaluator import EvaluatorGroup
from anomaly_seg_ros.evaluation.factory import create_pixel_evaluator, pixel_metrics
from anomaly_seg_ros.evaluation.frames import FrameScores
from anomaly_seg_ros.evaluation.object_metrics import ObjectEvaluator, ObjectMetrics
from anomaly_seg_ros.evaluation.operating_points import OperatingPoints
from anomaly_seg_ros.evaluation.pixel_metrics import PixelEvaluator, PixelMetrics

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameMetrics:
    """Pixel metrics of one score on one frame (NaN when the frame lacks a class)."""

    frame: str
    average_precision: float
    auroc: float
    num_anomalous: int


@dataclass
class ScoreResult:
    """Everything measured for one score over the dataset."""

    name: str
    pixel: PixelMetrics
    curve: OperatingPoints
    frames: list[FrameMetrics] = field(default_factory=list)
    component: ComponentMetrics | None = None
    component_threshold: float | None = None
    objects: ObjectMetrics | None = None


@dataclass
class EvaluationResult:
    """All scores' results, in the order the scores were given."""

    dataset: str
    mode: str
    frame_names: list[str]
    scores: dict[str, ScoreResult]
    settings: dict[str, object] = field(default_factory=dict)


def evaluate_frames(
    frames: Iterable[FrameScores],
    score_names: Sequence[str],
    dataset: str,
    mode: str = "exact",
    work_dir: str | Path | None = None,
    component_sizes: tuple[int, int] = (500, 100),
    total: int | None = None,
    progress: bool = True,
    objects: Mapping[str, ObjectEvaluator] | None = None,
    pixel_evaluators: Mapping[str, PixelEvaluator] | None = None,
) -> EvaluationResult:
    """Run both passes over ``frames``.

    :param score_names: the score maps every frame carries.
    :param dataset: a name for the report.
    :param mode: pixel-metric mode, ``exact`` or ``binned``.
    :param work_dir: cache folder for pass 2 (component metrics); None skips them.
    :param component_sizes: (min predicted segment, min ground-truth instance) in pixels.
    :param total: number of frames, for the progress bar.
    :param objects: score name -> object-level evaluator at that score's operating point
        (the node's threshold and ``min_area``); fed in pass 1, no cache needed.
    :param pixel_evaluators: score name -> pixel evaluator to feed (default: new ones of
        ``mode``); a caller that keeps them can merge their state later (fleet evaluation).
    :raises InputError: invalid score maps or labels.
    """
    from tqdm import tqdm

    given = pixel_evaluators or {}
    evaluators = {name: given.get(name) or create_pixel_evaluator(mode) for name in score_names}
    pixels = EvaluatorGroup(evaluators)
    per_frame: dict[str, list[FrameMetrics]] = {name: [] for name in score_names}
    frame_names: list[str] = []
    cache = Path(work_dir) if work_dir is not None else None
    for frame in tqdm(frames, total=total, desc="evaluate", unit="frame", disable=not progress):
        frame_names.append(frame.name)
        anomalous = int(np.count_nonzero(frame.label == 1))
        pixels.process(frame.scores, frame.label)
        for name in score_names:
            score = frame.scores[name]
            metrics = pixel_metrics(score, frame.label) if anomalous else None
            per_frame[name].append(
                FrameMetrics(
                    frame=frame.name,
                    average_precision=metrics.average_precision if metrics else float("nan"),
                    auroc=metrics.auroc if metrics else float("nan"),
                    num_anomalous=anomalous,
                )
            )
        for name, evaluator in (objects or {}).items():
            evaluator.process(frame.scores[name], frame.label)
        if cache is not None:
            _cache_frame(cache, len(frame_names) - 1, frame, score_names)

    results = {}
    for name, pixel in pixels.evaluate().items():
        results[name] = ScoreResult(
            name=name,
            pixel=pixel,
            curve=evaluators[name].operating_points().downsample(512),
            frames=per_frame[name],
            objects=objects[name].evaluate() if objects and name in objects else None,
        )
    if cache is not None:
        for name in tqdm(score_names, desc="components", unit="score", disable=not progress):
            _component_pass(cache, len(frame_names), results[name], component_sizes)
    return EvaluationResult(dataset, mode, frame_names, results)


def cached_frame(cache: Path, index: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(score, label) of frame ``index`` for score ``name`` from the pass-1 cache."""
    score = np.load(cache / name / f"{index:06d}.npy", allow_pickle=False)
    label = np.load(cache / "_label" / f"{index:06d}.npy", allow_pickle=False)
    return score, label


def _cache_frame(cache: Path, index: int, frame: FrameScores, score_names: Sequence[str]) -> None:
    for name, array in [("_label", frame.label)] + [(n, frame.scores[n]) for n in score_names]:
        folder = cache / name
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{index:06d}.npy", array)


def _component_pass(
    cache: Path, num_frames: int, result: ScoreResult, sizes: tuple[int, int]
) -> None:
    best = result.pixel.best_f1_threshold
    if not np.isfinite(best):
        LOGGER.warning("%s: no best-F1 threshold, component metrics skipped", result.name)
        return
    # The SMIYC instancer masks with ``score > threshold``; so do we, at the best-F1
    # threshold itself: pixels tied with it are not predicted anomalous.
    threshold = float(best)
    evaluator = ComponentEvaluator(threshold, *sizes)
    for index in range(num_frames):
        evaluator.process(*cached_frame(cache, index, result.name))
    result.component = evaluator.evaluate()
    result.component_threshold = threshold
