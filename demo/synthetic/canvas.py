"""The canvas a frame is drawn on: label ids and material ids, filled by polygons.

Labels are the *official* Cityscapes label ids (``gtFine_labelIds``), so a frame is
written exactly as Cityscapes stores it; train ids come from ``cityscapesscripts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from demo.synthetic.camera import NEAR_PLANE, Camera
from demo.synthetic.texture import MaterialTable

#: Fixed-point bits for sub-pixel polygon vertices (OpenCV ``shift``).
_SHIFT = 3
_SCALE = float(1 << _SHIFT)

#: Label value of test anomalies inside the renderer (never written as a label id).
ANOMALY_LABEL = 254


@dataclass(frozen=True)
class Obstacle:
    """Ground truth of one drawn test anomaly, in world coordinates (X right, Z forward).

    :param kind: one of :data:`demo.synthetic.anomalies.KINDS`.
    :param x_min: left end of its ground footprint, metres.
    :param x_max: right end.
    :param z_min: nearest point of its footprint (its ground contact seen from the camera).
    :param z_max: farthest point.
    :param height: top above the ground, metres.
    """

    kind: str
    x_min: float
    x_max: float
    z_min: float
    z_max: float
    height: float


class Canvas:
    """Label and material maps of one frame plus its camera and materials.

    :param camera: the frame's camera.
    :param materials: the frame's material table.
    """

    def __init__(self, camera: Camera, materials: MaterialTable) -> None:
        shape = (camera.image_height, camera.image_width)
        self.camera = camera
        self.materials = materials
        self.label = np.zeros(shape, np.uint8)
        self.material = np.zeros(shape, np.uint16)
        #: ground truth of the test anomalies drawn (appended by ``demo.synthetic.anomalies``)
        self.obstacles: list[Obstacle] = []

    def polygons(self, points: np.ndarray) -> list[np.ndarray]:
        """Project (..., K, 3) world polygons to fixed-point pixel polygons.

        Polygons with a vertex behind the camera are dropped (they are outside the field
        of view for everything the world places: facades start beyond the image edge).

        :param points: world vertices, the last-but-one axis runs along each polygon.
        :return: list of (K, 2) int32 fixed-point pixel polygons (possibly empty).
        """
        uv, depth = self.camera.project(points)
        fixed = np.round(uv * _SCALE).astype(np.int32).reshape(-1, uv.shape[-2], 2)
        in_front = np.all(depth.reshape(-1, uv.shape[-2]) >= NEAR_PLANE, axis=1)
        if in_front.all():
            return list(fixed)
        return list(fixed[in_front])

    def fill(self, polygons: list[np.ndarray], label: int | None, material: int) -> None:
        """Fill pixel polygons (from :meth:`polygons`) with a label and a material.

        :param label: label id, or None to change only the material (paint, windows).
        """
        if not polygons:
            return
        cv2.fillPoly(self.material, polygons, material, cv2.LINE_8, _SHIFT)
        if label is not None:
            cv2.fillPoly(self.label, polygons, label, cv2.LINE_8, _SHIFT)

    def fill_world(self, points: np.ndarray, label: int | None, material: int) -> None:
        """Project and fill world polygons (..., K, 3) in one call."""
        self.fill(self.polygons(np.asarray(points, np.float32)), label, material)

    def hull_world(self, points: np.ndarray, label: int | None, material: int) -> None:
        """Fill the convex hull of the projections of (N, 3) world points (a solid box)."""
        polygons = self.polygons(np.asarray(points, np.float32)[None])
        if not polygons:
            return
        hull = cv2.convexHull(polygons[0])
        cv2.fillConvexPoly(self.material, hull, material, cv2.LINE_8, _SHIFT)
        if label is not None:
            cv2.fillConvexPoly(self.label, hull, label, cv2.LINE_8, _SHIFT)

    def ellipse_world(
        self,
        center: tuple[float, float, float],
        radii: tuple[float, float],
        label: int | None,
        material: int,
        outline_m: float = 0.0,
        vertices: int = 20,
        wobble: np.ndarray | None = None,
    ) -> None:
        """Fill (or outline) an upright ellipse facing the camera, in world units.

        :param center: (X, Y, Z) of the ellipse centre.
        :param radii: horizontal and vertical radius, metres.
        :param outline_m: 0 fills; otherwise the outline width in metres (a ring).
        :param wobble: optional (vertices,) relative radius noise for organic outlines.
        """
        angles = np.linspace(0.0, 2.0 * np.pi, vertices, endpoint=False, dtype=np.float32)
        scale = 1.0 if wobble is None else (1.0 + wobble)
        ring = np.empty((vertices, 3), np.float32)
        ring[:, 0] = center[0] + radii[0] * np.cos(angles) * scale
        ring[:, 1] = center[1] + radii[1] * np.sin(angles) * scale
        ring[:, 2] = center[2]
        polygons = self.polygons(ring[None])
        if not polygons:
            return
        if outline_m <= 0:
            self.fill(polygons, label, material)
            return
        width = max(1, round(self.pixel_size(outline_m, center[2])))
        cv2.polylines(self.material, polygons, True, material, width, cv2.LINE_8, _SHIFT)
        if label is not None:
            cv2.polylines(self.label, polygons, True, label, width, cv2.LINE_8, _SHIFT)

    def line_world(
        self,
        start: Sequence[float],
        end: Sequence[float],
        width_m: float,
        label: int | None,
        material: int,
    ) -> None:
        """Draw a thick segment between two world points (bicycle frames, arms)."""
        segment = np.asarray([start, end], np.float32)
        polygons = self.polygons(segment[None])
        if not polygons:
            return
        depth = max(0.5 * (segment[0, 2] + segment[1, 2]), NEAR_PLANE)
        width = max(1, round(width_m * self.camera.focal / depth))
        a, b = (tuple(int(v) for v in p) for p in polygons[0])
        cv2.line(self.material, a, b, material, width, cv2.LINE_8, _SHIFT)
        if label is not None:
            cv2.line(self.label, a, b, label, width, cv2.LINE_8, _SHIFT)

    def pixel_size(self, metres: float, distance: float) -> float:
        """How many pixels ``metres`` spans at ``distance`` metres."""
        return metres * self.camera.focal / max(distance, NEAR_PLANE)
