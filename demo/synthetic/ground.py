"""The road layout across the street and the ground plane drawn from it.

The ground is drawn per pixel in world coordinates: every pixel below the horizon knows
its lateral offset X (relative to the possibly curved road centre line) and distance Z,
so bands (road, curb, sidewalk, terrain), lane markings and the asphalt grain all come
out in correct perspective.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import overload

import cv2
import numpy as np
import numpy.typing as npt

from demo.synthetic import labels as L
from demo.synthetic.canvas import Canvas
from demo.synthetic.texture import NoiseBank, jitter_color

#: Ground points farther than this (metres) are left to the sky/background.
MAX_GROUND_DISTANCE = 2500.0
#: Paving joints are drawn only this close (metres); farther they would alias.
_JOINT_DISTANCE = 14.0


@dataclass(frozen=True)
class Street:
    """Lateral layout of the street (metres, X at the road centre line is 0 + curve).

    :param curvature: the road centre is at ``X = curvature * Z**2``.
    :param road_left: X of the left road edge (< 0).
    :param road_right: X of the right road edge (> 0).
    :param lane_lines: X of the lane separators, with a dashed flag each.
    :param curb: curb width per side (left, right).
    :param sidewalk: sidewalk width per side; 0 means no sidewalk (rural edge).
    :param verge: terrain strip width beyond the sidewalk, per side.
    :param frontage: X of the building line per side (signed).
    :param crossing: (Z start, Z end) of a zebra crossing, or None.
    """

    curvature: float
    road_left: float
    road_right: float
    lane_lines: tuple[tuple[float, bool], ...]
    curb: tuple[float, float]
    sidewalk: tuple[float, float]
    verge: tuple[float, float]
    frontage: tuple[float, float]
    crossing: tuple[float, float] | None

    @overload
    def centre(self, z: float) -> float: ...

    @overload
    def centre(self, z: np.ndarray) -> np.ndarray: ...

    def centre(self, z: np.ndarray | float) -> np.ndarray | float:
        """X of the (curved) road frame origin at distance ``z``."""
        return self.curvature * np.square(z)

    def edge(self, side: int, band: str) -> float:
        """Outer X of a band ("road", "curb", "sidewalk", "verge") on side -1 or +1."""
        index = 0 if side < 0 else 1
        x = self.road_left if side < 0 else self.road_right
        outward = {
            "road": 0.0,
            "curb": self.curb[index],
            "sidewalk": self.curb[index] + self.sidewalk[index],
            "verge": self.curb[index] + self.sidewalk[index] + self.verge[index],
        }
        return x + side * outward[band]


def _pair(values: Iterable[float]) -> tuple[float, float]:
    """The two values of a (left, right) pair, drawn in order."""
    left, right = values
    return left, right


def sample_street(rng: np.random.Generator) -> Street:
    """Draw a random street: lanes, sidewalks, verges, building lines, curvature."""
    lane_width = rng.uniform(2.8, 3.7)
    lanes = int(rng.choice([1, 2, 2, 3, 4]))
    ego_lane = int(rng.integers(0, lanes))
    # The camera drives in `ego_lane`, slightly off its centre.
    offset = (ego_lane + 0.5 + rng.uniform(-0.2, 0.2)) * lane_width
    road_left = -offset
    road_right = lanes * lane_width - offset
    lines = tuple((road_left + k * lane_width, bool(rng.random() < 0.8)) for k in range(1, lanes))
    rural = rng.random() < 0.15
    sidewalk = _pair(0.0 if rural else float(rng.uniform(1.5, 5.0)) for _ in range(2))
    curb = _pair(0.0 if rural else float(rng.uniform(0.12, 0.3)) for _ in range(2))
    verge = _pair(
        float(rng.uniform(1.0, 8.0)) if rural or rng.random() < 0.35 else 0.0 for _ in range(2)
    )
    setback = rng.uniform(0.0, 3.0, 2)
    frontage = (
        road_left - curb[0] - sidewalk[0] - verge[0] - setback[0],
        road_right + curb[1] + sidewalk[1] + verge[1] + setback[1],
    )
    crossing = None
    if not rural and rng.random() < 0.3:
        start = rng.uniform(6.0, 30.0)
        crossing = (start, start + rng.uniform(3.0, 5.0))
    curvature = float(rng.normal(0.0, 0.0012)) if rng.random() < 0.5 else 0.0
    return Street(
        curvature, road_left, road_right, lines, curb, sidewalk, verge, frontage, crossing
    )


def draw_ground(
    canvas: Canvas, street: Street, rng: np.random.Generator, noise: NoiseBank
) -> tuple[int, np.ndarray, np.ndarray]:
    """Fill every ground pixel with its band's label and material.

    :return: ``(first_row, grain, z)``: first ground row, (H - first_row, W) float32 grain
        sampled in world coordinates, (H - first_row,) float32 distance per row.
    """
    camera, materials = canvas.camera, canvas.materials
    first = camera.first_ground_row(MAX_GROUND_DISTANCE)
    scale, z = camera.ground_rows(first)
    columns = np.arange(camera.image_width, dtype=np.float32) - np.float32(camera.cx)
    x = scale[:, None] * columns[None, :] - street.centre(z)[:, None].astype(np.float32)

    def ground(color: npt.ArrayLike, grain: float, blotch: float) -> int:
        return materials.add(jitter_color(rng, color), grain, blotch, ground=True)

    asphalt = ground(
        rng.choice([[82, 82, 86], [100, 98, 96], [66, 68, 72], [118, 114, 110]]), 0.12, 0.12
    )
    curb = ground([150, 148, 142], 0.1, 0.08)
    paving = ground(rng.choice([[128, 124, 120], [150, 120, 110], [110, 110, 115]]), 0.12, 0.1)
    grass = ground(rng.choice([[92, 122, 58], [120, 118, 70], [80, 100, 50]]), 0.25, 0.2)
    back = ground(rng.choice([[96, 116, 64], [124, 112, 90]]), 0.25, 0.2)
    paint = ground(rng.choice([[222, 222, 216], [230, 210, 140]], p=[0.85, 0.15]), 0.06, 0.1)
    joint = ground(materials.colors[paving] * 0.7 / materials.exposure, 0.05, 0.0)

    # Bands from far left to far right; searchsorted maps X to a band index. Zero widths
    # give duplicate edges, i.e. empty bands.
    edges = [street.edge(-1, name) for name in ("verge", "sidewalk", "curb", "road")]
    edges += [street.edge(1, name) for name in ("road", "curb", "sidewalk", "verge")]
    band_labels = [L.TERRAIN, L.TERRAIN, L.SIDEWALK, L.SIDEWALK, L.ROAD]
    band_materials = [back, grass, paving, curb, asphalt]
    band_labels += band_labels[-2::-1]
    band_materials += band_materials[-2::-1]
    band = np.searchsorted(np.asarray(edges, np.float32), x)
    label_rows = np.asarray(band_labels, np.uint8)[band]
    material_rows = np.asarray(band_materials, np.uint16)[band]

    on_road = label_rows == L.ROAD
    half = np.float32(rng.uniform(0.05, 0.09))
    phase = rng.uniform(0.0, 12.0)
    zz = z[:, None]
    dash = ((zz + phase) % 9.0) < 3.0
    for line_x, dashed in street.lane_lines:
        stripe = np.abs(x - line_x) < half
        material_rows[stripe & (dash if dashed else True) & on_road] = paint
    for edge_x in (street.road_left + 0.35, street.road_right - 0.35):
        if rng.random() < 0.6:
            material_rows[(np.abs(x - edge_x) < half) & on_road] = paint
    if street.crossing is not None:
        near, far = street.crossing
        rows = (z > near) & (z < far)
        zebra = ((x[rows] - street.road_left) % 1.0) < 0.5
        material_rows[rows] = np.where(zebra & on_road[rows], paint, material_rows[rows])
    close = int(np.searchsorted(-z, -_JOINT_DISTANCE))
    if close < len(z):
        near_x, near_z = x[close:], z[close:, None]
        joints = ((near_x % 0.6) < 0.035) | ((near_z % 0.6) < 0.035)
        region = material_rows[close:]
        region[joints & (region == paving)] = joint

    canvas.label[first:] = label_rows
    canvas.material[first:] = material_rows
    texels = np.float32(rng.uniform(18.0, 30.0))
    grain = cv2.remap(
        noise.fine,
        x * texels,
        np.broadcast_to(zz * texels, x.shape).astype(np.float32),
        cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_WRAP,
    )
    return first, grain, z
