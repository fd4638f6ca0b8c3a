"""Object-level figures at the node's operating point: what a planner asks first.

For each frame, the node's own mask (:func:`~anomaly_seg_ros.pipeline.postprocess.anomaly_mask`:
``score > threshold``, 8-connected components under ``min_area`` pixels dropped) is
compared with the ground-truth obstacles through the Segment-Me-If-You-Can component
definitions (:func:`~anomaly_seg_ros.evaluation.component_metrics.frame_components`):

* an **obstacle** is an 8-connected component of label 1; components under
  ``min_instance_size`` pixels become void (SMIYC ObstacleTrack: 10 px);
* an obstacle is **found** when its sIoU ≥ ``FOUND_SIOU`` = 0.5 — SMIYC's true positive
  at sIoU threshold τ = 0.5, the middle of the benchmark's 0.25 … 0.75 range;
* a predicted segment is a **false anomaly component** when its PPV < 0.5 — SMIYC's false
  positive at the same τ (less than half of it lies on obstacles);
* **component recall** = found / obstacles; **false components per frame** = false
  components / frames; **found-rate by area** = found / obstacles per bin of obstacle area
  (pixels outside void), bins :data:`AREA_BINS`.

Unlike the SMIYC component metrics in the same report (at each score's best-F1 threshold,
segments under 500 px removed), these use the threshold and ``min_area`` the node runs
with, so they describe the mask a planner receives.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from anomaly_seg_ros.evaluation.component_metrics import TRACK_SIZES, frame_components
from anomaly_seg_ros.evaluation.evaluator import Evaluator
from anomaly_seg_ros.pipeline.postprocess import anomaly_mask

#: sIoU an obstacle needs to count as found, and the PPV under which a segment is false.
FOUND_SIOU = 0.5
#: Edges of the obstacle-area bins, pixels (the first bin starts at ``min_instance_size``,
#: the last is open).
AREA_BINS = (10, 100, 1_000, 10_000)


@dataclass(frozen=True)
class AreaBin:
    """Obstacles with ``low ≤ area < high`` pixels (``high`` None = no upper edge)."""

    low: int
    high: int | None
    obstacles: int
    found: int

    @property
    def found_rate(self) -> float:
        """found / obstacles; NaN without obstacles."""
        return self.found / self.obstacles if self.obstacles else float("nan")

    @property
    def name(self) -> str:
        """``10–100 px`` or ``≥ 10000 px``."""
        return f"{self.low}–{self.high} px" if self.high is not None else f"≥ {self.low} px"


@dataclass(frozen=True)
class ObjectMetrics:
    """Object-level figures over a set of frames (see the module docstring).

    :param threshold: mask threshold (``score > threshold``).
    :param min_area: predicted components under this many pixels dropped (node's setting).
    :param min_instance_size: obstacles under this many pixels made void.
    :param frames: frames counted.
    :param obstacles: ground-truth obstacles.
    :param found: obstacles found.
    :param predicted: predicted anomaly components (after ``min_area``, outside void).
    :param false_components: predicted components with PPV < :data:`FOUND_SIOU`.
    :param bins: found-rate by obstacle area.
    """

    threshold: float
    min_area: int
    min_instance_size: int
    frames: int
    obstacles: int
    found: int
    predicted: int
    false_components: int
    bins: tuple[AreaBin, ...]

    @property
    def component_recall(self) -> float:
        """Fraction of obstacles found; NaN without obstacles."""
        return self.found / self.obstacles if self.obstacles else float("nan")

    @property
    def false_per_frame(self) -> float:
        """False anomaly components per frame; NaN without frames."""
        return self.false_components / self.frames if self.frames else float("nan")

    def to_dict(self) -> dict[str, object]:
        """Plain JSON values (NaN left to the writer)."""
        return {
            "threshold": self.threshold,
            "min_area": self.min_area,
            "min_instance_size": self.min_instance_size,
            "found_siou": FOUND_SIOU,
            "frames": self.frames,
            "obstacles": self.obstacles,
            "found": self.found,
            "component_recall": self.component_recall,
            "predicted_components": self.predicted,
            "false_components": self.false_components,
            "false_components_per_frame": self.false_per_frame,
            "by_area": [
                {
                    "low_px": b.low,
                    "high_px": b.high,
                    "obstacles": b.obstacles,
                    "found": b.found,
                    "found_rate": b.found_rate,
                }
                for b in self.bins
            ],
        }


class ObjectEvaluator(Evaluator[ObjectMetrics]):
    """Accumulates obstacles found and false components at one operating point.

    :param threshold: the node's mask threshold.
    :param min_area: the node's ``min_area``.
    :param min_instance_size: obstacles under this many pixels become void (SMIYC
        ObstacleTrack default).
    """

    def __init__(
        self,
        threshold: float,
        min_area: int = 0,
        min_instance_size: int = TRACK_SIZES["obstacle"][1],
    ) -> None:
        self.threshold = float(threshold)
        self.min_area = int(min_area)
        self.min_instance_size = int(min_instance_size)
        self.reset()

    def reset(self) -> None:
        """Forget every processed frame."""
        self.frames = 0
        self.areas: list[np.ndarray] = []
        self.found: list[np.ndarray] = []
        self.predicted = 0
        self.false_components = 0

    def process(self, score: np.ndarray, label: np.ndarray) -> None:
        """Add one frame: (H, W) float32 score (higher = more anomalous), 0/1/255 labels.

        :raises InputError: shapes differ.
        """
        mask = anomaly_mask(np.asarray(score), self.threshold, self.min_area)
        components = frame_components(mask, np.asarray(label), 0, self.min_instance_size)
        self.frames += 1
        self.areas.append(components.gt_area)
        self.found.append(components.siou_gt >= FOUND_SIOU)
        self.predicted += len(components.ppv_pred)
        self.false_components += int(np.count_nonzero(components.ppv_pred < FOUND_SIOU))

    def merge(self, other: Evaluator[ObjectMetrics]) -> None:
        """Add ``other``'s frames after this one's (same operating point required)."""
        self._check_mergeable(other, "threshold", "min_area", "min_instance_size")
        assert isinstance(other, ObjectEvaluator)
        self.frames += other.frames
        self.areas.extend(other.areas)
        self.found.extend(other.found)
        self.predicted += other.predicted
        self.false_components += other.false_components

    def evaluate(self) -> ObjectMetrics:
        """The figures over every frame since :meth:`reset`."""
        areas = np.concatenate(self.areas) if self.areas else np.zeros(0)
        found = np.concatenate(self.found) if self.found else np.zeros(0, bool)
        # The first bin starts where obstacles start to count.
        lows = [self.min_instance_size, *(e for e in AREA_BINS if e > self.min_instance_size)]
        edges = (*lows, math.inf)
        bins = []
        for low, high in itertools.pairwise(edges):
            inside = (areas >= low) & (areas < high)
            bins.append(
                AreaBin(
                    low=int(low),
                    high=None if math.isinf(high) else int(high),
                    obstacles=int(np.count_nonzero(inside)),
                    found=int(np.count_nonzero(found & inside)),
                )
            )
        return ObjectMetrics(
            threshold=self.threshold,
            min_area=self.min_area,
            min_instance_size=self.min_instance_size,
            frames=self.frames,
            obstacles=len(areas),
            found=int(np.count_nonzero(found)),
            predicted=self.predicted,
            false_components=self.false_components,
            bins=tuple(bins),
        )
