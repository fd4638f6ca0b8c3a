"""Settings of the object layer (components → objects → tracks), validated when made."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from anomaly_seg_ros.errors import ConfigError


@dataclass(frozen=True)
class ObjectSettings:
    """How the anomaly mask becomes objects and tracks.

    :param min_area_px: components smaller than this (pixels) are not objects.
    :param min_area_m2: objects whose frontal area (pixels × (range / focal)²) is below
        this are dropped once they have a ground position; 0 = off.
    :param on_road_only: keep only objects whose ground contact lies on VDE's road region
        (objects without a road region — no road seen — are kept).
    :param min_on_road_fraction: share of its bottom contact pixels an object needs on
        the road region to count as on the road.
    :param confirm_hits: a track is confirmed after this many matched frames ...
    :param confirm_window: ... among its last this many frames (k of n).
    :param max_age: frames without a match before a track is dropped.
    :param max_tracks: bound on live tracks; unmatched objects beyond it start no track.
    :param max_components: components examined per frame, the largest first (a bound on
        the cost of a mask of thousands of specks).
    :param gate_m: ground distance within which a track and an object may match ...
    :param gate_range_fraction: ... plus this share of the object's range.
    :param min_iou: image-box IoU for a match when either side has no ground position.
    :param max_range_m: contact points farther than this get no ground position.
    :param pixel_sigma: standard deviation of the contact row, pixels (range uncertainty).
    :param pitch_sigma_deg: standard deviation of the camera pitch, degrees (range
        uncertainty: the car pitches under braking; the mount is not exact).
    :param max_points: ground contact points kept per object (point cloud size).
    :param ignore_bottom_fraction: the bottom share of the image rows holds no objects (the
        car's own bonnet: a hood mask, measured once per vehicle); 0 = off.
    """

    min_area_px: int = 20
    min_area_m2: float = 0.0
    on_road_only: bool = True
    min_on_road_fraction: float = 0.5
    confirm_hits: int = 3
    confirm_window: int = 5
    max_age: int = 3
    max_tracks: int = 64
    max_components: int = 256
    gate_m: float = 1.5
    gate_range_fraction: float = 0.1
    min_iou: float = 0.2
    max_range_m: float = 150.0
    pixel_sigma: float = 1.0
    pitch_sigma_deg: float = 0.3
    max_points: int = 32
    ignore_bottom_fraction: float = 0.0

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem is not None:
            raise ConfigError(f"object settings: {problem}")

    def _problem(self) -> str | None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, float) and not math.isfinite(value):
                return f"{item.name} = {value} is not finite"
        positive = ("confirm_hits", "confirm_window", "max_tracks", "max_components")
        for name in (*positive, "max_age", "max_points"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                return f"{name} must be an integer, got {value!r}"
        for name in positive:
            if getattr(self, name) < 1:
                return f"{name} must be >= 1, got {getattr(self, name)}"
        for name in ("min_area_px", "max_age", "max_points"):
            if getattr(self, name) < 0:
                return f"{name} must be >= 0, got {getattr(self, name)}"
        if self.confirm_hits > self.confirm_window:
            return (
                f"confirm_hits {self.confirm_hits} > confirm_window {self.confirm_window}: "
                "no track could ever be confirmed"
            )
        if self.confirm_window > 62:
            return f"confirm_window must be <= 62, got {self.confirm_window}"
        if not 0.0 <= self.min_on_road_fraction <= 1.0:
            return f"min_on_road_fraction must be in [0, 1], got {self.min_on_road_fraction}"
        if not 0.0 <= self.min_iou <= 1.0:
            return f"min_iou must be in [0, 1], got {self.min_iou}"
        for name in ("min_area_m2", "gate_m", "gate_range_fraction", "pixel_sigma"):
            if getattr(self, name) < 0:
                return f"{name} must be >= 0, got {getattr(self, name)}"
        if not 0.0 <= self.ignore_bottom_fraction < 1.0:
            return f"ignore_bottom_fraction must be in [0, 1), got {self.ignore_bottom_fraction}"
        if self.pitch_sigma_deg < 0 or self.max_range_m <= 0:
            return "pitch_sigma_deg must be >= 0 and max_range_m > 0"
        return None
