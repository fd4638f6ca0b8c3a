"""What lines the street: building fronts, walls, fences, hedges, a back layer, a skyline.

Side structures stand on vertical planes parallel to the (curved) road, outside the
sidewalks, so nothing on the road or sidewalk is ever behind them: drawing them first,
far to near, and the street objects afterwards gives correct occlusion.
"""

from __future__ import annotations

import numpy as np

from demo.synthetic import labels as L
from demo.synthetic.canvas import Canvas
from demo.synthetic.ground import Street
from demo.synthetic.texture import jitter_color

_FACADE_COLORS = np.asarray(
    [
        [200, 185, 160],
        [215, 212, 205],
        [140, 140, 140],
        [150, 82, 62],
        [210, 180, 110],
        [150, 170, 190],
        [95, 88, 82],
        [105, 122, 140],
        [180, 150, 130],
        [170, 175, 160],
    ],
    np.float32,
)
_GREENS = np.asarray([[60, 92, 40], [82, 110, 48], [48, 70, 38], [100, 118, 60]], np.float32)
_WALL_COLORS = np.asarray([[150, 146, 138], [120, 112, 100], [170, 160, 140]], np.float32)
_FENCE_COLORS = np.asarray(
    [[90, 92, 96], [120, 96, 70], [60, 80, 60], [160, 160, 160]], np.float32
)
#: Segment kinds along a side and their probabilities.
_KINDS = ("building", "gap", "wall", "fence", "vegetation")
_KIND_P = (0.52, 0.08, 0.12, 0.12, 0.16)


def strip(
    street: Street,
    x: float,
    z0: float | np.float32,
    z1: float | np.float32,
    y0: float | np.ndarray,
    y1: float | np.ndarray,
    step: float = 8.0,
    pieces: int | None = None,
) -> np.ndarray:
    """Vertical quads on the plane ``x`` (road frame) from ``z0`` to ``z1``, following the curve.

    :param y0: bottom height(s): a scalar or one value per piece edge.
    :param y1: top height(s), same convention.
    :param step: longest piece, metres (curved roads need several pieces).
    :param pieces: number of pieces, overriding ``step``.
    :return: (n, 4, 3) float32 world quads.
    """
    if pieces is None:
        pieces = max(1, int(np.ceil((z1 - z0) / step)))
    zs = np.linspace(z0, z1, pieces + 1, dtype=np.float32)
    xs = x + street.centre(zs)
    bottom = np.broadcast_to(np.asarray(y0, np.float32), zs.shape)
    top = np.broadcast_to(np.asarray(y1, np.float32), zs.shape)
    quads = np.empty((pieces, 4, 3), np.float32)
    quads[:, 0] = np.stack([xs[:-1], bottom[:-1], zs[:-1]], -1)
    quads[:, 1] = np.stack([xs[1:], bottom[1:], zs[1:]], -1)
    quads[:, 2] = np.stack([xs[1:], top[1:], zs[1:]], -1)
    quads[:, 3] = np.stack([xs[:-1], top[:-1], zs[:-1]], -1)
    return quads


def _bumpy(rng: np.random.Generator, count: int, base: float, spread: float) -> np.ndarray:
    """Smoothed random heights for canopies and hedges."""
    heights = base + spread * rng.standard_normal(count + 2).astype(np.float32)
    return np.maximum(0.5, np.convolve(heights, np.ones(3) / 3.0, mode="valid"))


def _vegetation(
    canvas: Canvas,
    street: Street,
    rng: np.random.Generator,
    x: float,
    z0: float,
    z1: float,
    height: float,
    distance: float,
) -> None:
    pieces = max(2, int((z1 - z0) / 2.0))
    tops = _bumpy(rng, pieces + 1, height, 0.25 * height)
    material = canvas.materials.add(
        jitter_color(rng, _GREENS[rng.integers(len(_GREENS))]), 0.3, 0.35, distance=distance
    )
    canvas.fill_world(strip(street, x, z0, z1, 0.0, tops, pieces=pieces), L.VEGETATION, material)


def _windows(
    canvas: Canvas,
    street: Street,
    rng: np.random.Generator,
    side: int,
    x: float,
    z0: float,
    z1: float,
    height: float,
    shade: float,
    distance: float,
) -> None:
    floor = rng.uniform(2.8, 3.6)
    spacing = rng.uniform(2.0, 4.0)
    size_z, size_y = spacing * rng.uniform(0.35, 0.65), floor * rng.uniform(0.35, 0.6)
    if canvas.pixel_size(size_y, max(z0, 1.0) + 20.0) < 1.5:
        return
    centres_z = np.arange(z0 + spacing * 0.7, z1 - spacing * 0.4, spacing, dtype=np.float32)
    centres_y = np.arange(floor * 1.3, height - 1.0, floor, dtype=np.float32)
    if len(centres_z) == 0 or len(centres_y) == 0:
        return
    grid_z, grid_y = np.meshgrid(centres_z, centres_y)
    zz, yy = grid_z.ravel(), grid_y.ravel()
    xs = x + street.centre(zz)
    quads = np.empty((len(zz), 4, 3), np.float32)
    for corner, (dz, dy) in enumerate(((-1, -1), (1, -1), (1, 1), (-1, 1))):
        quads[:, corner] = np.stack([xs, yy + dy * size_y / 2, zz + dz * size_z / 2], -1)
    glass = rng.choice([[40, 48, 58], [70, 84, 100], [30, 30, 34], [120, 130, 140]])
    lit = rng.random(len(zz)) < 0.35
    for subset, tone in ((lit, 1.4), (~lit, 1.0)):
        if subset.any():
            material = canvas.materials.add(glass, 0.04, 0.15, shade * tone, distance)
            canvas.fill_world(quads[subset], None, material)


def _building(
    canvas: Canvas,
    street: Street,
    rng: np.random.Generator,
    side: int,
    x: float,
    z0: float,
    z1: float,
    shades: tuple[float, float, float],
) -> None:
    height = rng.uniform(5.0, 28.0) if rng.random() < 0.8 else rng.uniform(28.0, 45.0)
    distance = 0.5 * (z0 + z1)
    color = jitter_color(rng, _FACADE_COLORS[rng.integers(len(_FACADE_COLORS))])
    grain, blotch = rng.uniform(0.03, 0.15), rng.uniform(0.04, 0.2)
    if z0 > 1.0:
        end_face = np.asarray(
            [
                [
                    [x, 0, z0],
                    [x + side * 14.0, 0, z0],
                    [x + side * 14.0, height, z0],
                    [x, height, z0],
                ]
            ],
            np.float32,
        )
        end_face[..., 0] += street.centre(z0)
        material = canvas.materials.add(color, grain, blotch, shades[2], distance)
        canvas.fill_world(end_face, L.BUILDING, material)
    material = canvas.materials.add(color, grain, blotch, shades[0], distance)
    canvas.fill_world(strip(street, x, z0, z1, 0.0, height), L.BUILDING, material)
    trim = canvas.materials.add(color * 0.7, grain, blotch, shades[0], distance)
    canvas.fill_world(strip(street, x, z0, z1, height - 0.6, height), None, trim)
    _windows(canvas, street, rng, side, x, z0, z1, height, shades[0], distance)


def _barrier(
    canvas: Canvas,
    street: Street,
    rng: np.random.Generator,
    kind: str,
    x: float,
    z0: float,
    z1: float,
    shade: float,
) -> None:
    distance = 0.5 * (z0 + z1)
    if kind == "wall":
        height = rng.uniform(0.8, 3.0)
        color = jitter_color(rng, _WALL_COLORS[rng.integers(len(_WALL_COLORS))])
        material = canvas.materials.add(color, 0.1, 0.25, shade, distance)
        canvas.fill_world(strip(street, x, z0, z1, 0.0, height), L.WALL, material)
        return
    height = rng.uniform(1.0, 2.2)
    color = jitter_color(rng, _FENCE_COLORS[rng.integers(len(_FENCE_COLORS))])
    material = canvas.materials.add(color, 0.3, 0.1, shade, distance)
    canvas.fill_world(strip(street, x, z0, z1, 0.0, height), L.FENCE, material)
    posts = np.arange(z0, z1, rng.uniform(1.5, 3.0), dtype=np.float32)
    post_quads = np.concatenate([strip(street, x, z, z + 0.12, 0.0, height) for z in posts])
    rails = np.concatenate([strip(street, x, z0, z1, y, y + 0.08) for y in (0.2, height - 0.1)])
    dark = canvas.materials.add(color * 0.6, 0.1, 0.05, shade, distance)
    canvas.fill_world(np.concatenate([post_quads, rails]), None, dark)


def draw_back_layer(
    canvas: Canvas, street: Street, rng: np.random.Generator, z_end: float
) -> None:
    """Vegetation and plain building blocks far behind each side, and the skyline ahead."""
    for side, index in ((-1, 0), (1, 1)):
        x = street.frontage[index] + side * rng.uniform(10.0, 40.0)
        z = 5.0
        while z < z_end:
            length = rng.uniform(15.0, 50.0)
            if rng.random() < 0.5:
                _vegetation(canvas, street, rng, x, z, z + length, rng.uniform(5, 16), z + 30)
            else:
                color = jitter_color(rng, _FACADE_COLORS[rng.integers(len(_FACADE_COLORS))])
                material = canvas.materials.add(color, 0.05, 0.2, 0.8, z + 30)
                quads = strip(street, x, z, z + length, 0.0, rng.uniform(10.0, 40.0))
                canvas.fill_world(quads, L.BUILDING, material)
            z += length
    x = -250.0
    centre = float(street.centre(z_end))
    while x < 250.0:
        width = rng.uniform(10.0, 50.0)
        quad = np.asarray(
            [[[x, 0, z_end], [x + width, 0, z_end], [x + width, 1, z_end], [x, 1, z_end]]],
            np.float32,
        )
        quad[..., 0] += centre
        if rng.random() < 0.5:
            quad[0, 2:, 1] = rng.uniform(8.0, 45.0)
            label, color = L.BUILDING, _FACADE_COLORS[rng.integers(len(_FACADE_COLORS))]
        else:
            quad[0, 2:, 1] = rng.uniform(6.0, 18.0, 2)
            label, color = L.VEGETATION, _GREENS[rng.integers(len(_GREENS))]
        material = canvas.materials.add(jitter_color(rng, color), 0.05, 0.25, 0.85, z_end)
        canvas.fill_world(quad, label, material)
        x += width


def draw_sides(canvas: Canvas, street: Street, rng: np.random.Generator, z_end: float) -> None:
    """Segments along both sides of the street, drawn far to near.

    :param z_end: distance where the street ends (the skyline stands there).
    """
    sun = rng.uniform(0.55, 1.1, 3)  # left fronts, right fronts, end faces
    for side, index in ((-1, 0), (1, 1)):
        segments = []
        z = rng.uniform(-5.0, 5.0)
        while z < z_end:
            kind = _KINDS[rng.choice(len(_KINDS), p=_KIND_P)]
            length = rng.uniform(8.0, 35.0) if kind != "gap" else rng.uniform(3.0, 15.0)
            segments.append((kind, max(z, 0.5), min(z + length, z_end)))
            z += length
        shades = (sun[index], sun[1 - index], sun[2])
        for kind, z0, z1 in reversed(segments):
            x = street.frontage[index] + side * rng.uniform(0.0, 1.0)
            if kind == "building":
                _building(canvas, street, rng, side, x, z0, z1, shades)
            elif kind in ("wall", "fence"):
                _barrier(canvas, street, rng, kind, x, z0, z1, shades[0])
            elif kind == "vegetation":
                height = rng.uniform(1.2, 3.0) if rng.random() < 0.4 else rng.uniform(4.0, 12.0)
                _vegetation(canvas, street, rng, x, z0, z1, height, 0.5 * (z0 + z1))
