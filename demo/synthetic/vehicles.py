"""Cars, trucks and buses as shaded boxes with wheels, windows and lights.

A vehicle stands on the road at lateral offset ``x`` (road frame) with its near face at
distance ``z``. ``facing`` is +1 for traffic driving away (we see the rear) and -1 for
oncoming traffic (we see the front); the side towards the camera axis is drawn too.
"""

from __future__ import annotations

import numpy as np

from demo.synthetic import labels as L
from demo.synthetic.canvas import Canvas
from demo.synthetic.texture import jitter_color

_PAINTS = np.asarray(
    [
        [200, 200, 204],
        [30, 30, 34],
        [120, 122, 128],
        [150, 30, 30],
        [30, 50, 110],
        [230, 230, 226],
        [70, 90, 70],
        [170, 150, 110],
        [90, 20, 30],
        [60, 70, 80],
    ],
    np.float32,
)
_BUS_PAINTS = np.asarray(
    [[220, 190, 40], [200, 40, 40], [235, 235, 230], [40, 90, 160], [60, 140, 80]], np.float32
)
#: (width, length, body height, total height) ranges per class, metres.
SIZES = {
    L.CAR: ((1.65, 1.95), (3.8, 4.9), (0.75, 0.95), (1.35, 1.7)),
    L.TRUCK: ((2.3, 2.55), (6.5, 10.0), (2.8, 3.8), (2.8, 3.8)),
    L.BUS: ((2.45, 2.6), (10.5, 13.0), (2.9, 3.2), (2.9, 3.2)),
}


def box(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
    """(8, 3) corners of an axis-aligned box."""
    return np.asarray(
        [[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)], np.float32
    )


def face_z(x0: float, x1: float, y0: float, y1: float, z: float) -> np.ndarray:
    """(1, 4, 3) quad in the plane Z = z (a rear or front face)."""
    return np.asarray([[[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]]], np.float32)


def face_x(x: float, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
    """(1, 4, 3) quad in the plane X = x (a side face)."""
    return np.asarray([[[x, y0, z0], [x, y0, z1], [x, y1, z1], [x, y1, z0]]], np.float32)


def wheel_ring(x: float, y: float, z: float, radius: float, vertices: int = 14) -> np.ndarray:
    """(1, vertices, 3) disc of a wheel in the side plane X = x."""
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    ring = np.stack(
        [np.full(vertices, x), y + radius * np.sin(angles), z + radius * np.cos(angles)], -1
    )
    return ring[None].astype(np.float32)


def draw_vehicle(
    canvas: Canvas, rng: np.random.Generator, label: int, x: float, z: float, facing: int
) -> None:
    """Draw one vehicle of class ``label`` (CAR, TRUCK or BUS); ``x`` in world coordinates."""
    sizes = SIZES[label]
    width, length, body, top = (rng.uniform(*bounds) for bounds in sizes)
    top = max(top, body)
    materials = canvas.materials
    paints = _BUS_PAINTS if label == L.BUS else _PAINTS
    paint = jitter_color(rng, paints[rng.integers(len(paints))], 0.08)
    light = rng.uniform(0.6, 1.05)
    near_shade, side_shade = light, light * rng.uniform(0.6, 0.95)
    glass = materials.add([38, 44, 52], 0.05, 0.2, light, z)
    tyre = materials.add([22, 22, 24], 0.1, 0.05, 1.0, z)
    x0, x1 = x - width / 2, x + width / 2
    # The side facing the camera axis is visible.
    side_x = x1 if x < 0 else x0
    clearance = 0.3 if label == L.CAR else 0.45
    z1 = z + length

    if label == L.TRUCK:
        cab = rng.uniform(1.8, 2.4)
        cargo_top = top + rng.uniform(0.2, 0.6)
        cab_box = (
            box(x0 + 0.05, x1 - 0.05, clearance, top, z1 - cab, z1)
            if facing > 0
            else box(x0 + 0.05, x1 - 0.05, clearance, top, z, z + cab)
        )
        cab_material = materials.add(paint, 0.05, 0.1, side_shade, z)
        if facing > 0:
            canvas.hull_world(cab_box, label, cab_material)
        cargo = jitter_color(rng, rng.choice([[220, 220, 215], [160, 160, 150], [180, 60, 40]]))
        cargo_z0, cargo_z1 = (z, z1 - cab - 0.3) if facing > 0 else (z + cab + 0.3, z1)
        cargo_box = box(x0, x1, 1.0, cargo_top, cargo_z0, cargo_z1)
        canvas.hull_world(cargo_box, label, materials.add(cargo, 0.05, 0.15, side_shade, z))
        for wheel_z in np.linspace(z + 0.8, z1 - 0.8, 3):
            canvas.fill_world(wheel_ring(side_x, 0.5, wheel_z, 0.5), label, tyre)
        if facing > 0:
            rear = materials.add(cargo, 0.05, 0.15, near_shade, z)
            canvas.fill_world(face_z(x0, x1, 1.0, cargo_top, z), label, rear)
            canvas.fill_world(face_z(x - 0.02, x + 0.02, 1.1, cargo_top - 0.1, z), None, tyre)
            canvas.fill_world(face_z(x0 + 0.1, x0 + 0.45, 0.0, 1.0, z + 0.6), label, tyre)
            canvas.fill_world(face_z(x1 - 0.45, x1 - 0.1, 0.0, 1.0, z + 0.6), label, tyre)
        else:
            canvas.hull_world(cab_box, label, cab_material)
            front = materials.add(paint, 0.05, 0.1, near_shade, z)
            canvas.fill_world(face_z(x0 + 0.05, x1 - 0.05, clearance, top, z), label, front)
            canvas.fill_world(face_z(x0 + 0.2, x1 - 0.2, top - 1.1, top - 0.2, z), None, glass)
        return

    for wheel_z in (z + 0.2 * length, z1 - 0.2 * length):
        canvas.fill_world(wheel_ring(side_x, 0.33, wheel_z, 0.34), label, tyre)
    for wheel_x in (x0 + 0.1, x1 - 0.4):
        canvas.fill_world(face_z(wheel_x, wheel_x + 0.3, 0.0, 0.45, z + 0.7), label, tyre)
    body_material = materials.add(paint, 0.04, 0.1, side_shade, z)
    canvas.hull_world(box(x0, x1, clearance, body, z, z1), label, body_material)
    if label == L.CAR:
        taper = rng.uniform(0.6, 0.8)
        cabin = np.concatenate(
            [
                box(
                    x0 + 0.08, x1 - 0.08, body, body + 0.01, z + 0.18 * length, z1 - 0.22 * length
                ),
                box(
                    x0 + 0.18,
                    x1 - 0.18,
                    top - 0.01,
                    top,
                    z + 0.5 * (1 - taper) * length,
                    z1 - 0.45 * (1 - taper) * length,
                ),
            ]
        )
        canvas.hull_world(cabin, label, glass)
        pillar = materials.add(paint, 0.04, 0.1, near_shade, z)
        canvas.fill_world(
            face_z(x0 + 0.1, x0 + 0.22, body, top - 0.03, z + 0.3 * length), label, pillar
        )
        canvas.fill_world(
            face_z(x1 - 0.22, x1 - 0.1, body, top - 0.03, z + 0.3 * length), label, pillar
        )
    else:
        canvas.fill_world(face_x(side_x, 1.2, top - 0.3, z + 1.0, z1 - 0.5), None, glass)
        canvas.fill_world(face_x(side_x, clearance, 1.0, z + 2.5, z + 3.5), None, tyre)
    near = materials.add(paint, 0.04, 0.1, near_shade, z)
    near_top = body if label == L.CAR else top
    canvas.fill_world(face_z(x0, x1, clearance, near_top, z), label, near)
    if label == L.BUS:
        canvas.fill_world(face_z(x0 + 0.15, x1 - 0.15, 1.6, top - 0.25, z), None, glass)
    lamp_color = [200, 20, 20] if facing > 0 else [250, 245, 220]
    lamp = materials.add(lamp_color, 0.05, 0.05, rng.uniform(0.8, 1.3), z)
    lamp_y = near_top - 0.25
    for lamp_x in (x0 + 0.08, x1 - 0.33):
        canvas.fill_world(face_z(lamp_x, lamp_x + 0.25, lamp_y - 0.12, lamp_y, z), None, lamp)
    plate = materials.add([225, 225, 220], 0.02, 0.02, light, z)
    canvas.fill_world(
        face_z(x - 0.26, x + 0.26, clearance + 0.15, clearance + 0.27, z), None, plate
    )


def shadow_footprint(x: float, z: float, width: float, length: float) -> np.ndarray:
    """(1, 4, 3) ground quad of a vehicle's contact shadow."""
    return np.asarray(
        [
            [
                [x - width / 2 - 0.15, 0, z - 0.2],
                [x + width / 2 + 0.15, 0, z - 0.2],
                [x + width / 2 + 0.15, 0, z + length],
                [x - width / 2 - 0.15, 0, z + length],
            ]
        ],
        np.float32,
    )
