"""The host half of a frame: logit summary → anomaly score → refinement → resize → mask.

:meth:`anomaly_seg_ros.detector.Detector.detect` and the offline evaluation
(:mod:`anomaly_seg_ros.evaluation.scoring`) both go through :func:`anomaly_score`, so an
evaluated score is, by construction, the score the node publishes for the same settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.model.graph_refinement import GraphRefinement
from anomaly_seg_ros.model.summary import LogitSummary
from anomaly_seg_ros.pipeline import preprocess, refine
from anomaly_seg_ros.pipeline.scores import compute_score
from anomaly_seg_ros.pipeline.strips import StripPool

#: Called after each stage with its name (``score``, ``refine``, ``resize``, ``mask``).
StageClock = Callable[[str], None]


def _no_clock(stage: str) -> None:
    """A :data:`StageClock` that records nothing."""


class Stopwatch:
    """Seconds per stage of one frame, in the order the stages ran: :meth:`lap` ends the
    stage named and starts the next (a :data:`StageClock`, so the stages below the
    Detector time themselves without calling back up into it)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._started = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = now - self._started
        self._started = now


@dataclass(frozen=True)
class Postprocessed:
    """One frame's maps at the output (camera) size.

    :param labels: (H, W) uint8 train IDs.
    :param score: (H, W) float32 anomaly score, higher = more anomalous.
    :param mask: (H, W) bool anomaly mask.

    Camera pixels outside the network's view (``aspect: center_crop``) have label 255,
    the view's lowest score and mask False.
    """

    labels: np.ndarray
    score: np.ndarray
    mask: np.ndarray


def anomaly_mask(score: np.ndarray, threshold: float, min_area: int) -> np.ndarray:
    """(H, W) bool: ``score > threshold``, keeping 8-connected components ≥ ``min_area`` px."""
    mask = (score > threshold).view(np.uint8)
    if min_area <= 1 or not mask.any():
        return mask.view(bool)
    _, components, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False  # background
    return keep[components]


def anomaly_score(
    summary: LogitSummary,
    config: DetectorConfig,
    output_size: tuple[int, int],
    sml_stats: tuple[np.ndarray, np.ndarray] | None = None,
    pool: StripPool | None = None,
    clock: StageClock = _no_clock,
    graph: GraphRefinement | None = None,
) -> np.ndarray:
    """The final anomaly score for ``config``: score type, refinement, bilinear resize.

    :param summary: the frame's logit summary (network input size).
    :param config: score type and refinement settings.
    :param output_size: (H, W) to resize to (the camera or label size).
    :param sml_stats: per-class (mean, std) of the max logit, for ``sml``.
    :param pool: threads for the refinement (same result without).
    :param clock: told ``score`` and ``refine`` as those stages end.
    :param graph: the score + refinement the model's graph computes (its sidecar's
        ``graph_refinement``): used while ``config`` matches it, else the host path.
    :return: (H, W) float32, higher = more anomalous.
    :raises ModelError: ``sml`` without statistics.
    """
    if (
        summary.refined_score is not None
        and graph is not None
        and graph.matches(config, sml_stats)
    ):
        score = summary.refined_score  # the graph computed this score and refinement
        clock("score")
    else:  # no refinement in the graph, or another choice at run time: the host's
        mean, std = sml_stats if sml_stats is not None else (None, None)
        score = compute_score(config.score_type, summary, mean, std)
        clock("score")
        score = refine.refine_score(score, summary, config, pool)
    clock("refine")
    return preprocess.resize_score(score, output_size, config.aspect)


def postprocess(
    summary: LogitSummary,
    config: DetectorConfig,
    output_size: tuple[int, int],
    sml_stats: tuple[np.ndarray, np.ndarray] | None = None,
    pool: StripPool | None = None,
    clock: StageClock = _no_clock,
    graph: GraphRefinement | None = None,
) -> Postprocessed:
    """Labels, score and mask at ``output_size``: :func:`anomaly_score`, then the mask.

    Parameters as :func:`anomaly_score`; ``clock`` is also told ``resize`` and ``mask``.
    """
    score = anomaly_score(summary, config, output_size, sml_stats, pool, clock, graph)
    labels = preprocess.resize_labels(summary.label, output_size, config.aspect)
    clock("resize")
    mask = anomaly_mask(score, config.threshold, config.min_area)
    seen = preprocess.camera_view_mask(summary.shape, output_size, config.aspect)
    if seen is not None:  # camera pixels the network never saw are never anomalous
        mask &= seen
    clock("mask")
    return Postprocessed(labels, score, mask)
