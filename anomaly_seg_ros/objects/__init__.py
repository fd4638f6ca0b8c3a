"""The object layer: anomaly mask → objects with ground positions → persistent tracks.

No rclpy, no torch: the node, ``anomaly-seg bag``/``detect`` and the evaluation all use
:class:`ObjectLayer`. One frame, top to bottom, in :meth:`ObjectLayer.process`::

    mask components (largest first, at most max_components)
      -> bottom contact pixels -> undistorted rays -> flat ground (camera + mount)
      -> filters (min area px / m², on road) -> tracker (k of n, max age, stable ids)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from anomaly_seg_ros.objects.camera import (
    CameraInfoError,
    CameraModel,
    CameraMount,
    camera_model_from_info,
    camera_model_from_message,
    camera_size_problem,
    mount_problem,
)
from anomaly_seg_ros.objects.components import AnomalyObject, mask_components
from anomaly_seg_ros.objects.ground import GroundPosition, GroundProjector
from anomaly_seg_ros.objects.settings import ObjectSettings
from anomaly_seg_ros.objects.tracking import Track, Tracker

__all__ = [
    "NO_CAMERA_WARNING",
    "AnomalyObject",
    "CameraInfoError",
    "CameraModel",
    "CameraMount",
    "GroundPosition",
    "ObjectFrame",
    "ObjectLayer",
    "ObjectSettings",
    "Track",
    "camera_model_from_info",
    "camera_model_from_message",
    "camera_size_problem",
    "mount_problem",
]

#: The layer's warning while it has a mount but no camera intrinsics.
NO_CAMERA_WARNING = "no camera intrinsics (CameraInfo) yet: objects get no position"


@dataclass(frozen=True)
class ObjectFrame:
    """What one frame gives.

    :param objects: this frame's objects after the filters, largest first.
    :param tracks: live tracks, confirmed or not.
    :param confirmed: the confirmed tracks (what a planner gets).
    :param dropped_ids: ids of tracks dropped this frame (RViz delete markers).
    :param warnings: problems that started this frame, one line each (a problem is
        reported again only after it went away for a frame).
    """

    objects: list[AnomalyObject]
    tracks: list[Track]
    confirmed: list[Track]
    dropped_ids: list[int]
    warnings: list[str] = field(default_factory=list)


class ObjectLayer:
    """Per-stream state of the object layer (one per camera).

    :param settings: filters, association and confirmation.
    :param mount: the camera's pose in the vehicle frame, or None (no positions).
    """

    def __init__(self, settings: ObjectSettings, mount: CameraMount | None) -> None:
        self.settings = settings
        self.mount = mount
        self.camera: CameraModel | None = None
        self.tracker = Tracker(settings)
        self._projector: GroundProjector | None = None
        self._projector_for: tuple[int, int] | None = None
        self._sees_ground = False
        self._active: set[str] = set()

    def set_camera(self, camera: CameraModel | None) -> None:
        """Use these intrinsics from the next frame on (None: positions stop)."""
        self.camera = camera
        self._projector_for = None

    def reset(self) -> None:
        """Forget the tracks (a new drive, a jump in time)."""
        self.tracker.reset()

    def process(
        self,
        mask: np.ndarray,
        score: np.ndarray,
        road_region: np.ndarray | None,
        stamp_ns: int,
    ) -> ObjectFrame:
        """One frame's objects and tracks.

        :param mask: (H, W) bool anomaly mask at camera size.
        :param score: (H, W) float32 anomaly score, higher = more anomalous.
        :param road_region: (H, W) bool road region at camera size, or None (then
            ``on_road_fraction`` is NaN and the on-road filter keeps everything).
        :param stamp_ns: the frame's stamp; one not after the previous frame's resets the
            tracks (their ids are in ``dropped_ids``).
        :raises ValueError: ``mask`` and ``score`` differ in shape.
        """
        settings = self.settings
        problems: dict[str, str] = {}
        if mask.shape != score.shape or mask.ndim != 2:
            raise ValueError(f"mask {mask.shape} and score {score.shape} must be one (H, W)")
        if road_region is not None and road_region.shape != mask.shape:
            problems["road"] = (
                f"road region {road_region.shape} is not the mask's {mask.shape}: "
                "on-road fractions are NaN"
            )
            road_region = None
        if road_region is not None and not road_region.any():
            road_region = None  # no road seen: nothing to be on or off
        height, width = mask.shape
        kept_rows = height - int(settings.ignore_bottom_fraction * height)
        components, total = mask_components(
            np.ascontiguousarray(mask, bool)[:kept_rows],
            score,
            road_region,
            settings.min_area_px,
            settings.max_components,
        )
        if total > len(components):
            problems["components"] = (
                f"{total} anomaly components of >= {settings.min_area_px} px in one frame; "
                f"kept the {len(components)} largest (max_components)"
            )
        projector = self._ground(height, width, problems)
        objects = []
        grounds: list[GroundPosition | None] = [None] * len(components)
        if projector is not None:
            contacts = [component.contact for component in components]
            grounds = projector.positions(contacts, settings.max_points)
        for component, ground in zip(components, grounds, strict=True):
            item = AnomalyObject(
                box=component.box,
                area_px=component.area_px,
                peak_score=component.peak_score,
                mean_score=component.mean_score,
                on_road_fraction=component.on_road_fraction,
                # the ignored bottom rows cut an object off like the border does
                touches_border=component.touches_border(kept_rows, width),
                ground=ground,
            )
            if self._kept(item, projector):
                objects.append(item)
        tracks, dropped, untracked = self.tracker.update(objects, stamp_ns)
        if untracked:
            problems["tracks"] = (
                f"{settings.max_tracks} tracks live (max_tracks): {untracked} objects "
                "started no track"
            )
        confirmed = [track for track in tracks if track.confirmed]
        return ObjectFrame(objects, tracks, confirmed, dropped, self._new_warnings(problems))

    def _kept(self, item: AnomalyObject, projector: GroundProjector | None) -> bool:
        settings = self.settings
        if settings.on_road_only and item.on_road_fraction < settings.min_on_road_fraction:
            return False  # NaN (no road region) compares False: kept
        if settings.min_area_m2 > 0 and item.ground is not None and projector is not None:
            metres_per_pixel = item.ground.range_m / projector.camera.focal_y
            if item.area_px * metres_per_pixel**2 < settings.min_area_m2:
                return False
        return True

    def _ground(self, height: int, width: int, problems: dict[str, str]) -> GroundProjector | None:
        """The projector for this frame's size, or None with the reason in ``problems``."""
        if self.mount is None:
            return None
        problem = mount_problem(self.mount)
        if problem is not None:
            problems["mount"] = problem
            return None
        if self.camera is None:
            problems["camera"] = NO_CAMERA_WARNING
            return None
        problem = camera_size_problem(self.camera, width, height)
        if problem is not None:
            problems["camera"] = problem
            return None
        if self._projector_for != (height, width) or self._projector is None:
            settings = self.settings
            self._projector = GroundProjector(
                self.camera,
                self.mount,
                settings.max_range_m,
                settings.pixel_sigma,
                settings.pitch_sigma_deg,
            )
            self._projector_for = (height, width)
            self._sees_ground = self._projector.horizon_visible_below()
        if not self._sees_ground:
            problems["mount"] = (
                "camera mount and intrinsics see no ground in the bottom image row "
                "(looking at the sky?): objects get no position"
            )
            return None
        return self._projector

    def _new_warnings(self, problems: dict[str, str]) -> list[str]:
        """Problems that were not there the frame before (each reported once per spell)."""
        new = [message for key, message in problems.items() if key not in self._active]
        self._active = set(problems)
        return new
