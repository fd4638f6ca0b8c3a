"""Test anomalies (family a): Lost-and-Found-like objects lying on the road.

Boxes, tyres, debris (planks, rocks), animal-like figures and cargo (sacks, crates,
barrels, buckets) in earthy and dull colours. They are drawn with the internal label
:data:`~demo.synthetic.canvas.ANOMALY_LABEL` and become the anomaly class of the
Fishyscapes-style test set. Fine-tuning never sees this family: its OoD objects come from
:mod:`demo.synthetic.ood_bank`, which has other shapes, colours and parameters.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from demo.synthetic.canvas import ANOMALY_LABEL, Canvas
from demo.synthetic.canvas import Obstacle as Obstacle  # re-exported (demo drive)
from demo.synthetic.ground import Street
from demo.synthetic.placement import Actor
from demo.synthetic.texture import jitter_color
from demo.synthetic.vehicles import box, face_z

_EARTH = np.asarray(
    [
        [150, 115, 75],
        [110, 85, 60],
        [190, 170, 140],
        [70, 70, 65],
        [120, 120, 110],
        [60, 45, 35],
        [170, 160, 150],
        [40, 40, 40],
    ],
    np.float32,
)
_FUR = np.asarray([[120, 80, 45], [40, 35, 30], [210, 205, 195], [180, 120, 60]], np.float32)
_BRIGHT_CARGO = np.asarray(
    [[30, 70, 160], [220, 110, 30], [30, 30, 30], [200, 40, 40]], np.float32
)
KINDS = ("box", "tyre", "debris", "animal", "cargo")

#: (x_min, x_max, z_min, z_max, height): where a drawn anomaly stands, world metres.
Footprint = tuple[float, float, float, float, float]


def _material(
    canvas: Canvas, rng: np.random.Generator, palette: np.ndarray, z: float, shade: float = 1.0
) -> int:
    color = jitter_color(rng, palette[rng.integers(len(palette))], 0.1)
    return canvas.materials.add(color, rng.uniform(0.05, 0.2), rng.uniform(0.05, 0.25), shade, z)


def draw_box(canvas: Canvas, rng: np.random.Generator, x: float, z: float) -> Footprint:
    """A cardboard or plastic box, possibly tilted open at the top."""
    width, height, depth = rng.uniform(0.25, 0.9), rng.uniform(0.2, 0.7), rng.uniform(0.25, 0.8)
    shade = rng.uniform(0.6, 1.0)
    side = _material(canvas, rng, _EARTH[:3], z, shade * 0.8)
    canvas.hull_world(
        box(x - width / 2, x + width / 2, 0, height, z, z + depth), ANOMALY_LABEL, side
    )
    front = canvas.materials.add(
        canvas.materials.colors[side] / canvas.materials.exposure / 0.8, 0.1, 0.15, 1.0, z
    )
    canvas.fill_world(face_z(x - width / 2, x + width / 2, 0, height, z), ANOMALY_LABEL, front)
    if rng.random() < 0.5:
        tape = canvas.materials.add([200, 190, 160], 0.05, 0.05, shade, z)
        canvas.fill_world(face_z(x - 0.04, x + 0.04, 0, height, z - 0.01), None, tape)
    return x - width / 2, x + width / 2, z, z + depth, height


def draw_tyre(canvas: Canvas, rng: np.random.Generator, x: float, z: float) -> Footprint:
    """A tyre standing upright (a dark ring) or lying flat."""
    radius = rng.uniform(0.28, 0.45)
    rubber = canvas.materials.add([28, 28, 30], 0.12, 0.1, rng.uniform(0.7, 1.1), z)
    if rng.random() < 0.5:
        half_width = radius * rng.uniform(0.3, 1.0)
        outline = radius * 0.45
        # The ring is drawn centred on the ellipse: half its width inside, half outside, so
        # the ellipse is smaller by that half and the tyre stands on the road (not in it).
        canvas.ellipse_world(
            (x, radius, z),
            (half_width - outline / 2, radius - outline / 2),
            ANOMALY_LABEL,
            rubber,
            outline_m=outline,
            vertices=20,
        )
        return x - half_width, x + half_width, z, z, 2 * radius
    angles = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    height = rng.uniform(0.15, 0.25)
    circle_x, circle_z = x + radius * np.cos(angles), z + radius + radius * np.sin(angles)
    bottom = np.stack([circle_x, np.zeros(20), circle_z], -1)
    top = np.stack([circle_x, np.full(20, height), circle_z], -1)
    # The silhouette of the lying cylinder is the hull of its two circles.
    canvas.hull_world(np.concatenate([bottom, top]), ANOMALY_LABEL, rubber)
    tread = canvas.materials.add([40, 40, 42], 0.15, 0.1, rng.uniform(0.7, 1.1), z)
    canvas.fill_world(top[None], ANOMALY_LABEL, tread)
    # A lying tyre shows its metal rim (part of the object), not the road through it.
    rim = canvas.materials.add([125, 125, 130], 0.05, 0.1, rng.uniform(0.6, 1.0), z)
    inner = np.stack(
        [
            x + 0.5 * radius * np.cos(angles),
            np.full(20, height),
            z + radius + 0.5 * radius * np.sin(angles),
        ],
        -1,
    )
    canvas.fill_world(inner[None], ANOMALY_LABEL, rim)
    return x - radius, x + radius, z, z + 2 * radius, height


def draw_debris(canvas: Canvas, rng: np.random.Generator, x: float, z: float) -> Footprint:
    """Planks, rocks and scrap pieces scattered in a small area."""
    extents: list[tuple[float, float, float, float, float]] = []
    for _ in range(int(rng.integers(1, 4))):
        dx, dz = rng.uniform(-0.6, 0.6), rng.uniform(0.0, 1.0)
        material = _material(canvas, rng, _EARTH, z + dz, rng.uniform(0.6, 1.0))
        if rng.random() < 0.5:
            length, thick = rng.uniform(0.6, 1.8), rng.uniform(0.05, 0.2)
            angle = rng.uniform(0, np.pi)
            ex, ez = np.cos(angle) * length / 2, np.sin(angle) * length / 2
            pieces = [
                box(
                    x + dx - ex - 0.08,
                    x + dx - ex + 0.08,
                    0,
                    thick,
                    z + dz - ez,
                    z + dz - ez + 0.1,
                ),
                box(
                    x + dx + ex - 0.08,
                    x + dx + ex + 0.08,
                    0,
                    thick,
                    z + dz + ez,
                    z + dz + ez + 0.1,
                ),
            ]
            canvas.hull_world(np.concatenate(pieces), ANOMALY_LABEL, material)
            corners = np.concatenate(pieces)
            extents.append(
                (
                    float(corners[:, 0].min()),
                    float(corners[:, 0].max()),
                    float(corners[:, 2].min()),
                    float(corners[:, 2].max()),
                    float(thick),
                )
            )
        else:
            size = rng.uniform(0.15, 0.5)
            wobble = 0.3 * rng.standard_normal(12).astype(np.float32)
            canvas.ellipse_world(
                (x + dx, size * 0.6, z + dz),
                (size, size * 0.6),
                ANOMALY_LABEL,
                material,
                vertices=12,
                wobble=wobble,
            )
            extents.append((x + dx - size, x + dx + size, z + dz, z + dz, 1.2 * size))
    bounds = np.asarray(extents)
    return (
        float(bounds[:, 0].min()),
        float(bounds[:, 1].max()),
        float(bounds[:, 2].min()),
        float(bounds[:, 3].max()),
        float(bounds[:, 4].max()),
    )


def draw_animal(canvas: Canvas, rng: np.random.Generator, x: float, z: float) -> Footprint:
    """A four-legged animal-like figure seen from the side, dog to deer sized."""
    size = rng.uniform(0.35, 0.9)
    direction = float(rng.choice([-1.0, 1.0]))
    fur = _material(canvas, rng, _FUR, z, rng.uniform(0.6, 1.0))
    leg_top = size * 0.55
    for leg_x in (-0.55, -0.35, 0.35, 0.55):
        canvas.fill_world(
            face_z(x + leg_x * size - 0.04, x + leg_x * size + 0.04, 0, leg_top + 0.05, z),
            ANOMALY_LABEL,
            fur,
        )
    body_y = leg_top + size * 0.2
    wobble = 0.06 * rng.standard_normal(16).astype(np.float32)
    canvas.ellipse_world(
        (x, body_y, z), (size * 0.7, size * 0.25), ANOMALY_LABEL, fur, vertices=16, wobble=wobble
    )
    head_x = x + direction * size * 0.8
    canvas.line_world(
        (x + direction * size * 0.55, body_y + 0.05, z),
        (head_x, body_y + size * 0.3, z),
        size * 0.16,
        ANOMALY_LABEL,
        fur,
    )
    canvas.ellipse_world(
        (head_x + direction * 0.05, body_y + size * 0.35, z),
        (size * 0.17, size * 0.12),
        ANOMALY_LABEL,
        fur,
        vertices=12,
    )
    canvas.line_world(
        (x - direction * size * 0.68, body_y + 0.03, z),
        (x - direction * size * 0.95, body_y - size * 0.1, z),
        0.04,
        ANOMALY_LABEL,
        fur,
    )
    # it stands on its legs
    return x - 0.55 * size - 0.04, x + 0.55 * size + 0.04, z, z, body_y + 0.47 * size


def draw_cargo(canvas: Canvas, rng: np.random.Generator, x: float, z: float) -> Footprint:
    """A sack, a wooden crate, a barrel or a bucket."""
    kind = int(rng.integers(4))
    shade = rng.uniform(0.6, 1.0)
    if kind == 0:
        size = rng.uniform(0.3, 0.6)
        material = _material(canvas, rng, _EARTH[2:4], z, shade)
        wobble = 0.12 * rng.standard_normal(14).astype(np.float32)
        canvas.ellipse_world(
            (x, size * 0.5, z),
            (size * 0.8, size * 0.5),
            ANOMALY_LABEL,
            material,
            vertices=14,
            wobble=wobble,
        )
        return x - 0.8 * size, x + 0.8 * size, z, z, size
    if kind == 1:
        size = rng.uniform(0.4, 0.8)
        wood = canvas.materials.add(jitter_color(rng, [165, 125, 80]), 0.2, 0.1, shade, z)
        canvas.hull_world(
            box(x - size / 2, x + size / 2, 0, size * 0.8, z, z + size), ANOMALY_LABEL, wood
        )
        slat = canvas.materials.add(jitter_color(rng, [110, 80, 50]), 0.1, 0.1, shade, z)
        for level in (0.25, 0.55):
            y = size * 0.8 * level
            canvas.fill_world(
                face_z(x - size / 2, x + size / 2, y, y + 0.04, z - 0.01), None, slat
            )
        return x - size / 2, x + size / 2, z, z + size, size * 0.8
    radius = rng.uniform(0.15, 0.3) if kind == 2 else rng.uniform(0.12, 0.18)
    height = radius * rng.uniform(1.5, 2.8) if kind == 2 else radius * 1.5
    material = _material(canvas, rng, _BRIGHT_CARGO, z, shade)
    canvas.fill_world(face_z(x - radius, x + radius, 0, height, z), ANOMALY_LABEL, material)
    rim = canvas.materials.add(
        canvas.materials.colors[material] * 0.7 / canvas.materials.exposure, 0.05, 0.05, 1.0, z
    )
    canvas.ellipse_world((x, height, z + radius * 0.5), (radius, radius * 0.3), ANOMALY_LABEL, rim)
    return x - radius, x + radius, z, z + radius, height + 0.3 * radius


_DRAW = {
    "box": draw_box,
    "tyre": draw_tyre,
    "debris": draw_debris,
    "animal": draw_animal,
    "cargo": draw_cargo,
}


def _draw_and_record(
    canvas: Canvas, kind: str, rng: np.random.Generator, x: float, z: float
) -> None:
    """Draw one anomaly and append its :class:`Obstacle` to ``canvas.obstacles``."""
    canvas.obstacles.append(Obstacle(kind, *_DRAW[kind](canvas, rng, x, z)))


def road_anomalies(canvas: Canvas, street: Street, rng: np.random.Generator) -> list[Actor]:
    """One to three test anomalies on the road ahead (use as ``World.render(anomalies=...)``).

    Each one drawn appends its ground truth to ``canvas.obstacles``.
    """
    actors: list[Actor] = []
    for _ in range(int(rng.choice([1, 1, 2, 3]))):
        kind = KINDS[rng.integers(len(KINDS))]
        z = float(rng.uniform(4.0, 35.0) if rng.random() < 0.8 else rng.uniform(35.0, 60.0))
        x = float(rng.uniform(street.road_left + 0.4, street.road_right - 0.4)) + street.centre(z)
        sub_rng = np.random.default_rng(int(rng.integers(2**31)))
        actors.append(Actor(z, partial(_draw_and_record, canvas, kind, sub_rng, x, z), x=x))
    return actors
