"""Objects with ground positions against the synthetic world's 3D ground truth.

Per frame, the confirmed tracks (what a planner receives) are matched to the frame's
ground-truth obstacles on the ground plane: a track matches an obstacle when its position
lies within ``max(MATCH_M, MATCH_FRACTION · range)`` of the obstacle's footprint
(rectangle in the vehicle frame), closest pairs first, each at most once. Then:

* **found-rate by range band**: visible on-road obstacles (≥ ``MIN_VISIBLE_PX`` anomaly
  pixels) matched by a confirmed track / all of them, over every frame, per band of the
  obstacle's range (:data:`RANGE_BANDS`); the same for the frame's raw objects (before
  confirmation), which separates the mask from the tracker;
* **false confirmed objects per frame**: confirmed tracks with a position that match no
  obstacle (visible or not) / frames;
* **position error**: distance from a matched track's (forward, left) to the obstacle's
  nearest contact point (front edge, middle), metres and % of range: median and 90th
  percentile, all and within 40 m;
* **frames to confirm**: per obstacle, frames from its first visible frame to its first
  frame found by a confirmed track (never confirmed: counted apart).

Tracks without a position (no camera) cannot be placed and are counted apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anomaly_seg_ros.evaluation.object_truth import TruthObstacle
from anomaly_seg_ros.objects import ObjectFrame
from anomaly_seg_ros.objects.ground import GroundPosition

#: (low, high) metres of the range bands.
RANGE_BANDS = ((0.0, 20.0), (20.0, 40.0), (40.0, 80.0))
#: A track matches an obstacle within this many metres of its footprint ...
MATCH_M = 1.0
#: ... or this share of its range, whichever is larger.
MATCH_FRACTION = 0.1
#: Position errors and found-rates are also given within this range (the targets').
NEAR_M = 40.0
#: Frames kept for the bird's-eye plot (the first ones: memory stays bounded on long bags).
PLOTTED_FRAMES = 3000


def footprint_distance(ground: GroundPosition, obstacle: TruthObstacle) -> float:
    """Metres from ``ground``'s (forward, left) to ``obstacle``'s footprint (0 inside)."""
    forward = max(
        obstacle.forward_m - ground.forward_m, 0.0, ground.forward_m - obstacle.forward_far_m
    )
    left = max(obstacle.left_min_m - ground.left_m, 0.0, ground.left_m - obstacle.left_max_m)
    return math.hypot(forward, left)


def match(
    grounds: Sequence[GroundPosition], obstacles: Sequence[TruthObstacle]
) -> list[tuple[int, int]]:
    """Greedy matching, closest first: [(ground index, obstacle index)]."""
    pairs = []
    for i, ground in enumerate(grounds):
        for j, obstacle in enumerate(obstacles):
            distance = footprint_distance(ground, obstacle)
            if distance <= max(MATCH_M, MATCH_FRACTION * obstacle.range_m):
                pairs.append((distance, i, j))
    pairs.sort()
    used_i: set[int] = set()
    used_j: set[int] = set()
    matches = []
    for _, i, j in pairs:
        if i not in used_i and j not in used_j:
            used_i.add(i)
            used_j.add(j)
            matches.append((i, j))
    return matches


def _band(range_m: float) -> int | None:
    for index, (low, high) in enumerate(RANGE_BANDS):
        if low <= range_m < high:
            return index
    return None


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"median": math.nan, "p90": math.nan, "count": 0}
    array = np.asarray(values)
    return {
        "median": float(np.median(array)),
        "p90": float(np.percentile(array, 90)),
        "count": len(values),
    }


@dataclass
class GroundObjectEvaluator:
    """Accumulates the figures of the module docstring over frames."""

    frames: int = 0
    false_confirmed: int = 0
    confirmed: int = 0
    unplaced: int = 0
    band_obstacles: list[int] = field(default_factory=lambda: [0] * len(RANGE_BANDS))
    band_found: list[int] = field(default_factory=lambda: [0] * len(RANGE_BANDS))
    band_detected: list[int] = field(default_factory=lambda: [0] * len(RANGE_BANDS))
    errors: list[tuple[float, float]] = field(default_factory=list)  # (range, error m)
    first_visible: dict[tuple[int, int], int] = field(default_factory=dict)
    first_found: dict[tuple[int, int], int] = field(default_factory=dict)
    positions: list[dict[str, Any]] = field(default_factory=list)  # bird's-eye plot

    def process(self, frame: ObjectFrame, truth: Sequence[TruthObstacle]) -> None:
        """Add one frame: its object-layer output and its ground-truth obstacles."""
        index = self.frames
        self.frames += 1
        placed = [t for t in frame.confirmed if t.object.ground is not None]
        self.confirmed += len(frame.confirmed)
        self.unplaced += len(frame.confirmed) - len(placed)
        grounds = [t.object.ground for t in placed]
        matches = match(grounds, truth)  # type: ignore[arg-type]
        self.false_confirmed += len(placed) - len(matches)
        found = {j: i for i, j in matches}
        raw = [o.ground for o in frame.objects if o.ground is not None]
        detected = {j for _, j in match(raw, truth)}
        for j, obstacle in enumerate(truth):
            key = (obstacle.scene, obstacle.index)
            if obstacle.visible and obstacle.on_road:
                self.first_visible.setdefault(key, index)
                band = _band(obstacle.range_m)
                if band is not None:
                    self.band_obstacles[band] += 1
                    self.band_found[band] += j in found
                    self.band_detected[band] += j in detected
            if j in found:
                if key in self.first_visible:
                    self.first_found.setdefault(key, index)
                ground = grounds[found[j]]
                assert ground is not None
                error = math.hypot(
                    ground.forward_m - obstacle.forward_m, ground.left_m - obstacle.left_m
                )
                self.errors.append((obstacle.range_m, error))
        if len(self.positions) >= PLOTTED_FRAMES:
            return
        self.positions.append(
            {
                "truth": [(o.forward_m, o.left_m, o.visible) for o in truth],
                "tracks": [
                    (t.id, t.object.ground.forward_m, t.object.ground.left_m)  # type: ignore[union-attr]
                    for t in placed
                ],
            }
        )

    def evaluate(self) -> dict[str, Any]:
        """The figures as plain JSON values (NaN where a ratio has no members)."""

        def rate(found: int, total: int) -> float:
            return found / total if total else math.nan

        bands = [
            {
                "low_m": low,
                "high_m": high,
                "obstacles": self.band_obstacles[k],
                "found": self.band_found[k],
                "found_rate": rate(self.band_found[k], self.band_obstacles[k]),
                "detected_rate": rate(self.band_detected[k], self.band_obstacles[k]),
            }
            for k, (low, high) in enumerate(RANGE_BANDS)
        ]
        near = [k for k, (_, high) in enumerate(RANGE_BANDS) if high <= NEAR_M]
        near_total = sum(self.band_obstacles[k] for k in near)
        near_found = sum(self.band_found[k] for k in near)
        metres = [e for _, e in self.errors]
        percent = [100 * e / r for r, e in self.errors if r > 0]
        near_percent = [100 * e / r for r, e in self.errors if 0 < r < NEAR_M]
        latency = [
            self.first_found[key] - first
            for key, first in self.first_visible.items()
            if key in self.first_found
        ]
        return {
            "frames": self.frames,
            "confirmed_objects": self.confirmed,
            "confirmed_without_position": self.unplaced,
            "false_confirmed": self.false_confirmed,
            "false_confirmed_per_frame": rate(self.false_confirmed, self.frames),
            "by_range": bands,
            "found_rate_within_40m": rate(near_found, near_total),
            "position_error_m": _quantiles(metres),
            "position_error_percent": _quantiles(percent),
            "position_error_percent_within_40m": _quantiles(near_percent),
            "obstacles_seen": len(self.first_visible),
            "obstacles_confirmed": len(latency),
            "frames_to_confirm": _quantiles([float(v) for v in latency]),
            "match_m": MATCH_M,
            "match_fraction": MATCH_FRACTION,
        }
