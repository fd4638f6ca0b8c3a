"""Pedestrians, cyclists (rider + bicycle) and parked bicycles as camera-facing figures.

Figures are built in a local frame (dx to the right, y up, metres) on a plane facing the
camera at distance ``z``; parts are quads and ellipses, projected in one go per part.
"""

from __future__ import annotations

import numpy as np

from demo.synthetic import labels as L
from demo.synthetic.canvas import Canvas
from demo.synthetic.texture import jitter_color

_CLOTHES = np.asarray(
    [
        [30, 30, 36],
        [60, 60, 70],
        [150, 150, 150],
        [200, 200, 196],
        [40, 50, 90],
        [120, 30, 30],
        [90, 70, 50],
        [60, 90, 60],
        [180, 160, 120],
        [200, 120, 40],
    ],
    np.float32,
)
_SKIN = np.asarray([[225, 190, 160], [190, 140, 105], [140, 95, 65], [95, 65, 45]], np.float32)
_HAIR = np.asarray([[30, 25, 20], [90, 60, 30], [170, 140, 90], [120, 120, 120]], np.float32)


def _quads(
    x: float, z: float, parts: list[tuple[float, float, float, float, float, float]]
) -> np.ndarray:
    """Trapezoids (bottom centre dx, bottom y, bottom width, top dx, top y, top width)."""
    quads = np.empty((len(parts), 4, 3), np.float32)
    for index, (bx, by, bw, tx, ty, tw) in enumerate(parts):
        quads[index] = [
            [x + bx - bw / 2, by, z],
            [x + bx + bw / 2, by, z],
            [x + tx + tw / 2, ty, z],
            [x + tx - tw / 2, ty, z],
        ]
    return quads


def _material(
    canvas: Canvas, rng: np.random.Generator, palette: np.ndarray, z: float, shade: float
) -> int:
    color = jitter_color(rng, palette[rng.integers(len(palette))], 0.1)
    return canvas.materials.add(color, 0.08, 0.1, shade, z)


def draw_person(
    canvas: Canvas, rng: np.random.Generator, x: float, z: float, label: int = L.PERSON
) -> None:
    """A standing or walking pedestrian at world ``x``, distance ``z``."""
    height = rng.uniform(1.5, 1.95) if rng.random() < 0.9 else rng.uniform(1.0, 1.4)
    shade = rng.uniform(0.6, 1.05)
    top, bottom = (
        _material(canvas, rng, _CLOTHES, z, shade),
        _material(canvas, rng, _CLOTHES, z, shade),
    )
    skin, hair = _material(canvas, rng, _SKIN, z, shade), _material(canvas, rng, _HAIR, z, shade)
    hip, shoulder = 0.5 * height, 0.81 * height
    stride = rng.uniform(0.0, 0.18)
    legs = [
        (-0.09 - stride, 0.0, 0.13, -0.08, hip, 0.15),
        (0.09 + stride, 0.0, 0.13, 0.08, hip, 0.15),
    ]
    canvas.fill_world(_quads(x, z, legs), label, bottom)
    shoulders = height * rng.uniform(0.23, 0.28)
    torso = [(0.0, hip - 0.05, shoulders * 0.8, 0.0, shoulder, shoulders)]
    swing = rng.uniform(-0.1, 0.1)
    arms = [
        (-shoulders / 2 - 0.05 + swing, hip - 0.05, 0.09, -shoulders / 2 + 0.02, shoulder, 0.11),
        (shoulders / 2 + 0.05 - swing, hip - 0.05, 0.09, shoulders / 2 - 0.02, shoulder, 0.11),
    ]
    canvas.fill_world(_quads(x, z, arms), label, top)
    canvas.fill_world(_quads(x, z, torso), label, top)
    canvas.fill_world(
        _quads(x, z, [(0.0, shoulder - 0.02, 0.09, 0.0, shoulder + 0.06, 0.09)]), label, skin
    )
    head = height * 0.065
    canvas.ellipse_world((x, height - head, z), (head * 0.8, head), label, skin, vertices=12)
    canvas.ellipse_world(
        (x, height - head * 0.6, z), (head * 0.85, head * 0.5), label, hair, vertices=10
    )
    if rng.random() < 0.2:
        bag = _material(canvas, rng, _CLOTHES, z, shade)
        side = rng.choice([-1.0, 1.0]) * (shoulders / 2 + 0.12)
        canvas.fill_world(
            _quads(x, z, [(side, hip - 0.2, 0.25, side, hip + 0.15, 0.22)]), label, bag
        )


def draw_bicycle_side(
    canvas: Canvas, rng: np.random.Generator, x: float, z: float, direction: float, frame: int
) -> tuple[float, float]:
    """A bicycle seen from the side; returns (seat dx, handlebar dx) relative to ``x``."""
    radius = rng.uniform(0.3, 0.36)
    base = 0.55 * direction
    tyre = canvas.materials.add([25, 25, 25], 0.05, 0.05, 1.0, z)
    for wheel_dx in (-base, base):
        canvas.ellipse_world(
            (x + wheel_dx, radius, z),
            (radius, radius),
            L.BICYCLE,
            tyre,
            outline_m=0.05,
            vertices=16,
        )
    seat = (x - 0.2 * direction, 0.95)
    bar = (x + 0.42 * direction, 1.02)
    crank = (x, radius)
    tubes = [
        ((x - base, radius), crank),
        (crank, seat),
        (seat, (x - base, radius)),
        (seat, (x + 0.35 * direction, 0.9)),
        (crank, (x + 0.35 * direction, 0.9)),
        ((x + 0.35 * direction, 0.9), (x + base, radius)),
        ((x + 0.35 * direction, 0.9), bar),
    ]
    for (ax, ay), (bx, by) in tubes:
        canvas.line_world((ax, ay, z), (bx, by, z), 0.035, L.BICYCLE, frame)
    return seat[0] - x, bar[0] - x


def draw_cyclist(
    canvas: Canvas, rng: np.random.Generator, x: float, z: float, ridden: bool
) -> None:
    """A cyclist crossing (side view) or a parked bicycle when ``ridden`` is False."""
    direction = float(rng.choice([-1.0, 1.0]))
    shade = rng.uniform(0.6, 1.05)
    frame = _material(canvas, rng, _CLOTHES, z, shade)
    seat_dx, bar_dx = draw_bicycle_side(canvas, rng, x, z, direction, frame)
    if not ridden:
        return
    top, bottom = (
        _material(canvas, rng, _CLOTHES, z, shade),
        _material(canvas, rng, _CLOTHES, z, shade),
    )
    skin = _material(canvas, rng, _SKIN, z, shade)
    hip = (x + seat_dx, 1.0)
    shoulder = (x + seat_dx + 0.25 * direction, 1.55)
    knee = (x + 0.1 * direction, 0.75 + rng.uniform(-0.1, 0.1))
    for start, end, width, material in (
        (hip, knee, 0.14, bottom),
        (knee, (x, 0.35), 0.11, bottom),
        (hip, shoulder, 0.3, top),
        (shoulder, (x + bar_dx, 1.05), 0.09, top),
    ):
        canvas.line_world((*start, z), (*end, z), width, L.RIDER, material)
    head = rng.uniform(0.1, 0.12)
    canvas.ellipse_world(
        (shoulder[0] + 0.05 * direction, 1.72, z), (head * 0.85, head), L.RIDER, skin, vertices=12
    )


def draw_cyclist_behind(canvas: Canvas, rng: np.random.Generator, x: float, z: float) -> None:
    """A cyclist riding away along the road, seen from behind."""
    shade = rng.uniform(0.6, 1.05)
    tyre = canvas.materials.add([25, 25, 25], 0.05, 0.05, 1.0, z)
    canvas.fill_world(_quads(x, z, [(0.0, 0.0, 0.05, 0.0, 0.7, 0.06)]), L.BICYCLE, tyre)
    frame = _material(canvas, rng, _CLOTHES, z, shade)
    canvas.fill_world(_quads(x, z + 0.4, [(0.0, 1.0, 0.6, 0.0, 1.04, 0.6)]), L.BICYCLE, frame)
    top, bottom = (
        _material(canvas, rng, _CLOTHES, z, shade),
        _material(canvas, rng, _CLOTHES, z, shade),
    )
    skin = _material(canvas, rng, _SKIN, z, shade)
    pedal = rng.uniform(-0.1, 0.1)
    legs = [(-0.1, 0.3 + pedal, 0.1, -0.1, 0.95, 0.15), (0.1, 0.3 - pedal, 0.1, 0.1, 0.95, 0.15)]
    canvas.fill_world(_quads(x, z - 0.05, legs), L.RIDER, bottom)
    canvas.fill_world(_quads(x, z - 0.05, [(0.0, 0.9, 0.32, 0.0, 1.5, 0.42)]), L.RIDER, top)
    canvas.ellipse_world((x, 1.62, z - 0.05), (0.09, 0.11), L.RIDER, skin, vertices=12)
