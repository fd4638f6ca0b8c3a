"""Bottom contact pixels → undistorted rays → the flat ground ``z = 0`` of the vehicle frame.

An object on a flat road touches it where its lowest pixels are. Each such pixel's ray
(undistorted with the CameraInfo's K and D, rotated by the mount) meets the ground plane at
one point; a ray at or above the horizon never does, and gives no point. See
``docs/objects.md`` for the limits (slopes, floating objects).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from anomaly_seg_ros.objects.camera import CameraModel, CameraMount, undistorted_rays

#: Contact points farther than the near edge by more than this (metres) ...
DEPTH_BAND_M = 1.0
#: ... or this share of the near edge's distance are not ground contact but the underside of
#: an overhanging part (an animal's belly, a lorry's load): their rays pass under it and
#: meet the road behind. Lateral extent and points come from the band only.
DEPTH_BAND_FRACTION = 0.1
#: A ray must point at least this much downwards (z component of the unit direction) to
#: meet the ground: the horizon and everything above it give no point.
MIN_DOWNWARD = 1e-6


@dataclass(frozen=True)
class GroundPosition:
    """Where an object touches the ground, in the vehicle frame (metres).

    :param forward_m: x of its nearest contact (the contact points' 10th percentile).
    :param left_m: y of the middle of its contact's lateral extent (contact points within
        :data:`DEPTH_BAND_M` or :data:`DEPTH_BAND_FRACTION` behind the near edge).
    :param range_m: ``hypot(forward_m, left_m)``, from the vehicle frame's origin.
    :param lateral_extent_m: width of its contact along y.
    :param range_sigma_m: one standard deviation of ``range_m`` from a contact row off by
        ``pixel_sigma`` and a pitch off by ``pitch_sigma_deg``: grows with range squared.
    :param points: (N, 3) float32 ground contact points (z = 0).
    """

    forward_m: float
    left_m: float
    range_m: float
    lateral_extent_m: float
    range_sigma_m: float
    points: np.ndarray


class GroundProjector:
    """Pixels → ground points for one camera and mount.

    :param camera: intrinsics at the mask size.
    :param mount: the camera's pose in the vehicle frame (valid: see ``mount_problem``).
    :param max_range_m: farther ground points count as no point.
    :param pixel_sigma: contact row uncertainty, pixels.
    :param pitch_sigma_deg: pitch uncertainty, degrees.
    """

    def __init__(
        self,
        camera: CameraModel,
        mount: CameraMount,
        max_range_m: float = 150.0,
        pixel_sigma: float = 1.0,
        pitch_sigma_deg: float = 0.3,
    ) -> None:
        self.camera = camera
        self.mount = mount
        self.max_range_m = max_range_m
        self._rotation = mount.optical_rotation()
        self._origin = mount.origin
        self._angle_sigma = math.hypot(pixel_sigma / camera.focal_y, math.radians(pitch_sigma_deg))

    def ground_points(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where the rays of ``pixels`` meet the ground.

        :param pixels: (N, 2) float (column, row).
        :return: ``(points, valid)``: (N, 3) float64 vehicle-frame points (NaN where not
            valid) and (N,) bool: the ray points down and meets the ground within
            ``max_range_m``.
        """
        normalised = undistorted_rays(self.camera, pixels)
        optical = np.concatenate([normalised, np.ones((len(normalised), 1))], axis=1)
        directions = optical @ self._rotation.T
        down = -directions[:, 2]
        valid = down > MIN_DOWNWARD * np.linalg.norm(directions, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            distance = np.where(valid, self._origin[2] / down, np.nan)
        points = self._origin[None, :] + distance[:, None] * directions
        points[:, 2] = 0.0
        horizontal = np.hypot(points[:, 0], points[:, 1])
        valid &= horizontal <= self.max_range_m
        points[~valid] = np.nan
        return points, valid

    def range_sigma(self, points: np.ndarray) -> np.ndarray:
        """(N,) float64: range uncertainty at ground points ``points`` (N, 3).

        The ray's angle below the horizontal ``a`` gives ``d = h / tan(a)``, so
        ``σ_d = (h² + d²) / h · σ_a`` with ``σ_a`` from the pixel and pitch uncertainty.
        """
        height = self._origin[2]
        distance = np.hypot(points[:, 0] - self._origin[0], points[:, 1] - self._origin[1])
        sigma: np.ndarray = (height**2 + distance**2) / height * self._angle_sigma
        return sigma

    def position(self, contact: np.ndarray, max_points: int = 32) -> GroundPosition | None:
        """The ground position of an object from its bottom contact pixels.

        :param contact: (N, 2) float (column, row) of its lowest pixel per column; the
            lower pixel edge (row + 0.5) is where it meets the ground.
        :param max_points: contact points kept in :attr:`GroundPosition.points`.
        :return: None when no contact point meets the ground, or the lowest one does not.
        """
        return self.positions([contact], max_points)[0]

    def positions(
        self, contacts: list[np.ndarray], max_points: int = 32
    ) -> list[GroundPosition | None]:
        """:meth:`position` of several objects, with one projection for all of them."""
        if not contacts:
            return []
        points, valid = self.ground_points(np.concatenate(contacts))
        ends = np.cumsum([len(contact) for contact in contacts])
        found: list[GroundPosition | None] = []
        for contact, end in zip(contacts, ends, strict=True):
            start = end - len(contact)
            found.append(self._summary(contact, points[start:end], valid[start:end], max_points))
        return found

    def _summary(
        self, contact: np.ndarray, points: np.ndarray, valid: np.ndarray, max_points: int
    ) -> GroundPosition | None:
        if len(contact) == 0 or not valid[int(np.argmax(contact[:, 1]))]:
            return None  # the lowest contact pixel does not meet the ground
        points = points[valid]
        # The nearest-rank 10th percentile: the near edge, robust to a stray low pixel.
        nearest = int(0.1 * (len(points) - 1))
        forward = float(np.partition(points[:, 0], nearest)[nearest])
        band = max(DEPTH_BAND_M, DEPTH_BAND_FRACTION * abs(forward))
        points = points[points[:, 0] <= forward + band]
        left_min, left_max = float(points[:, 1].min()), float(points[:, 1].max())
        left = 0.5 * (left_min + left_max)
        if len(points) > max_points:
            spread = (np.arange(max_points) * (len(points) - 1)) // max(max_points - 1, 1)
            points = points[spread]
        height = self._origin[2]
        distance = math.hypot(forward - self._origin[0], left - self._origin[1])
        return GroundPosition(
            forward_m=forward,
            left_m=left,
            range_m=math.hypot(forward, left),
            lateral_extent_m=left_max - left_min,
            range_sigma_m=(height**2 + distance**2) / height * self._angle_sigma,
            points=points.astype(np.float32),
        )

    def horizon_visible_below(self) -> bool:
        """Whether any pixel of the image's bottom row sees the ground."""
        columns = np.linspace(0, self.camera.width - 1, 9)
        bottom = np.stack([columns, np.full(9, self.camera.height - 0.5)], axis=1)
        return bool(self.ground_points(bottom)[1].any())

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) float64 pixels of vehicle-frame points (N, 3), distortion ignored (tests,
        the bird's-eye plot); NaN behind the camera."""
        optical = (np.asarray(points, np.float64) - self._origin) @ self._rotation
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(optical[:, 2] > 0, optical[:, 0] / optical[:, 2], np.nan)
            y = np.where(optical[:, 2] > 0, optical[:, 1] / optical[:, 2], np.nan)
        k = self.camera.k
        return np.stack([k[0, 0] * x + k[0, 1] * y + k[0, 2], k[1, 1] * y + k[1, 2]], axis=1)
