"""Street furniture: lamp posts, sign posts with signs, traffic lights, street trees."""

from __future__ import annotations

import numpy as np

from demo.synthetic import labels as L
from demo.synthetic.canvas import Canvas
from demo.synthetic.texture import jitter_color
from demo.synthetic.vehicles import face_z

_POLE_COLORS = np.asarray(
    [[120, 122, 125], [70, 75, 72], [160, 160, 155], [50, 50, 52]], np.float32
)
#: Sign faces: (background, border or symbol colour).
_SIGN_FACES = (
    ([235, 235, 230], [200, 30, 30]),
    ([30, 80, 170], [235, 235, 235]),
    ([240, 200, 40], [30, 30, 30]),
    ([40, 120, 70], [235, 235, 235]),
    ([200, 30, 30], [235, 235, 235]),
)
_SHAPES = ("circle", "triangle", "square", "diamond", "rect")


def draw_pole(
    canvas: Canvas, rng: np.random.Generator, x: float, z: float, height: float, width: float
) -> int:
    """A vertical pole standing at world ``x``; returns its material."""
    color = jitter_color(rng, _POLE_COLORS[rng.integers(len(_POLE_COLORS))])
    material = canvas.materials.add(color, 0.06, 0.1, rng.uniform(0.7, 1.1), z)
    canvas.fill_world(face_z(x - width / 2, x + width / 2, 0.0, height, z), L.POLE, material)
    return material


def draw_lamp_post(
    canvas: Canvas, rng: np.random.Generator, x: float, z: float, towards: float
) -> None:
    """A street lamp whose arm reaches ``towards`` the road (-1 left, +1 right)."""
    height = rng.uniform(5.0, 9.0)
    material = draw_pole(canvas, rng, x, z, height, rng.uniform(0.14, 0.28))
    reach = rng.uniform(0.8, 2.5) * towards
    canvas.line_world((x, height - 0.1, z), (x + reach, height + 0.3, z), 0.08, L.POLE, material)
    canvas.fill_world(
        face_z(x + reach - 0.35, x + reach + 0.35, height + 0.05, height + 0.35, z),
        L.POLE,
        material,
    )


def draw_sign(canvas: Canvas, rng: np.random.Generator, x: float, y: float, z: float) -> None:
    """One traffic sign face (or its grey back) centred at (x, y, z)."""
    size = rng.uniform(0.55, 0.9)
    shape = _SHAPES[rng.integers(len(_SHAPES))]
    back = rng.random() < 0.2
    background, symbol = _SIGN_FACES[rng.integers(len(_SIGN_FACES))]
    shade = rng.uniform(0.75, 1.15)
    if back:
        background = symbol = [130, 130, 132]
    outer = canvas.materials.add(jitter_color(rng, symbol, 0.06), 0.04, 0.05, shade, z)
    inner = canvas.materials.add(jitter_color(rng, background, 0.06), 0.04, 0.05, shade, z)
    half = size / 2
    if shape == "circle":
        canvas.ellipse_world((x, y, z), (half, half), L.TRAFFIC_SIGN, outer, vertices=16)
        canvas.ellipse_world((x, y, z), (half * 0.75, half * 0.75), None, inner, vertices=16)
        return
    if shape == "triangle":
        corners = [[x - half, y + half * 0.7], [x + half, y + half * 0.7], [x, y - half]]
    elif shape == "diamond":
        corners = [[x, y + half], [x + half, y], [x, y - half], [x - half, y]]
    elif shape == "rect":
        corners = [
            [x - half * 1.5, y - half * 0.6],
            [x + half * 1.5, y - half * 0.6],
            [x + half * 1.5, y + half * 0.6],
            [x - half * 1.5, y + half * 0.6],
        ]
    else:
        corners = [
            [x - half, y - half],
            [x + half, y - half],
            [x + half, y + half],
            [x - half, y + half],
        ]
    polygon = np.asarray([[[cx, cy, z] for cx, cy in corners]], np.float32)
    canvas.fill_world(polygon, L.TRAFFIC_SIGN, outer)
    centre = polygon.mean(axis=1, keepdims=True)
    canvas.fill_world(centre + (polygon - centre) * 0.72, None, inner)


def draw_sign_post(canvas: Canvas, rng: np.random.Generator, x: float, z: float) -> None:
    """A thin post carrying one or two signs."""
    height = rng.uniform(2.4, 3.6)
    draw_pole(canvas, rng, x, z, height, rng.uniform(0.07, 0.12))
    draw_sign(canvas, rng, x, height - 0.35, z - 0.03)
    if rng.random() < 0.3:
        draw_sign(canvas, rng, x, height - 1.2, z - 0.03)


def draw_traffic_light(
    canvas: Canvas, rng: np.random.Generator, x: float, z: float, towards: float
) -> None:
    """A traffic-light post, sometimes with a mast arm over the road."""
    height = rng.uniform(2.8, 4.0)
    pole = draw_pole(canvas, rng, x, z, height + 0.3, rng.uniform(0.12, 0.2))
    boxes = [(x, height)]
    if rng.random() < 0.4:
        reach = rng.uniform(3.0, 7.0) * towards
        arm_y = height + rng.uniform(1.5, 2.5)
        canvas.fill_world(face_z(x - 0.08, x + 0.08, height, arm_y, z), L.POLE, pole)
        canvas.line_world((x, arm_y, z), (x + reach, arm_y, z), 0.12, L.POLE, pole)
        boxes.append((x + reach, arm_y - 0.05))
    housing = canvas.materials.add([30, 32, 30], 0.05, 0.05, rng.uniform(0.8, 1.2), z)
    lit = int(rng.integers(3))
    for box_x, top in boxes:
        canvas.fill_world(
            face_z(box_x - 0.17, box_x + 0.17, top - 0.9, top, z - 0.05), L.TRAFFIC_LIGHT, housing
        )
        for slot, color in enumerate(([220, 40, 30], [230, 160, 20], [40, 210, 90])):
            glow = rng.uniform(1.2, 1.5) if slot == lit else 0.25
            lamp = canvas.materials.add(color, 0.02, 0.02, glow, z)
            canvas.ellipse_world(
                (box_x, top - 0.17 - slot * 0.28, z - 0.1), (0.1, 0.1), None, lamp, vertices=10
            )


def draw_tree(canvas: Canvas, rng: np.random.Generator, x: float, z: float) -> None:
    """A street tree: trunk and a lumpy crown, all vegetation."""
    height = rng.uniform(4.0, 10.0)
    bark = canvas.materials.add(
        jitter_color(rng, [80, 62, 45]), 0.2, 0.1, rng.uniform(0.6, 1.0), z
    )
    trunk = rng.uniform(0.15, 0.35)
    canvas.fill_world(
        face_z(x - trunk / 2, x + trunk / 2, 0.0, height * 0.6, z), L.VEGETATION, bark
    )
    green = jitter_color(rng, [[60, 95, 40], [85, 112, 50], [50, 75, 35]][rng.integers(3)])
    leaves = canvas.materials.add(green, 0.35, 0.35, rng.uniform(0.6, 1.1), z)
    radius = height * rng.uniform(0.2, 0.32)
    wobble = 0.15 * rng.standard_normal(18).astype(np.float32)
    canvas.ellipse_world(
        (x, height - radius, z - 0.1),
        (radius, radius * rng.uniform(0.9, 1.3)),
        L.VEGETATION,
        leaves,
        vertices=18,
        wobble=wobble,
    )
