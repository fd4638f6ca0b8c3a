"""Pinhole camera over a flat ground plane: projection and per-pixel ground coordinates.

World frame: X to the right, Y up (height above the ground), Z forward along the road.
The camera sits at (0, ``height``, 0) looking along +Z, pitched down by ``pitch`` radians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Points closer than this to the camera plane (metres) are not projected.
NEAR_PLANE = 0.3


@dataclass(frozen=True)
class Camera:
    """Intrinsics and pose of the forward-facing camera.

    :param image_height: rows of the rendered image.
    :param image_width: columns of the rendered image.
    :param focal: focal length in pixels.
    :param height: camera height above the road, metres.
    :param pitch: downward pitch, radians (positive looks down).
    :param cy_offset: principal point offset from the image centre row, pixels.
    """

    image_height: int
    image_width: int
    focal: float
    height: float
    pitch: float
    cy_offset: float = 0.0

    @property
    def cx(self) -> float:
        return (self.image_width - 1) / 2.0

    @property
    def cy(self) -> float:
        return (self.image_height - 1) / 2.0 + self.cy_offset

    @property
    def horizon_row(self) -> float:
        """Image row of the horizon (points infinitely far along the ground)."""
        return self.cy - self.focal * math.tan(self.pitch)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points to pixel coordinates.

        :param points: (..., 3) float array of (X, Y, Z) world points.
        :return: ``(uv, depth)``: (..., 2) float32 pixel coordinates (column, row) and
            (...) float32 camera depth; depth < :data:`NEAR_PLANE` means "behind".
        """
        sin_p, cos_p = math.sin(self.pitch), math.cos(self.pitch)
        x = points[..., 0]
        down = self.height - points[..., 1]
        z = points[..., 2]
        depth = down * sin_p + z * cos_p
        row_offset = down * cos_p - z * sin_p
        safe = np.maximum(depth, NEAR_PLANE)
        uv = np.empty((*points.shape[:-1], 2), dtype=np.float32)
        uv[..., 0] = self.cx + self.focal * x / safe
        uv[..., 1] = self.cy + self.focal * row_offset / safe
        return uv, depth.astype(np.float32)

    def ground_rows(self, first_row: int) -> tuple[np.ndarray, np.ndarray]:
        """Where the rays of rows ``first_row..H-1`` meet the ground.

        X is linear in the column along a row, so the ground is described by two per-row
        numbers: ``X = scale[row] * (u - cx)`` and ``Z = depth[row]``.

        :param first_row: first row strictly below the horizon.
        :return: ``(scale, z)``, each (H - first_row,) float32.
        """
        rows = np.arange(first_row, self.image_height, dtype=np.float64)
        slope = (rows - self.cy) / self.focal
        sin_p, cos_p = math.sin(self.pitch), math.cos(self.pitch)
        down_component = np.maximum(slope * cos_p + sin_p, 1e-6)
        distance = self.height / down_component
        z = distance * (cos_p - slope * sin_p)
        scale = distance / self.focal
        return scale.astype(np.float32), z.astype(np.float32)

    def first_ground_row(self, max_distance: float) -> int:
        """First image row whose ground point is closer than ``max_distance`` metres."""
        # A ray leaving `angle` below the horizontal meets the ground height/tan(angle) ahead.
        angle = math.atan2(self.height, max_distance)
        row = self.cy + self.focal * math.tan(angle - self.pitch)
        return int(np.clip(math.ceil(row), 0, self.image_height))
