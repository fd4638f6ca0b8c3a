"""Where things stand: vehicles in lanes and at the curbs, people, cyclists, poles, trees.

:func:`place_actors` only decides positions and returns :class:`Actor` entries; the scene
draws them far to near so nearer things occlude farther ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from demo.synthetic import labels as L
from demo.synthetic.canvas import Canvas
from demo.synthetic.furniture import (
    draw_lamp_post,
    draw_sign_post,
    draw_traffic_light,
    draw_tree,
)
from demo.synthetic.ground import Street
from demo.synthetic.people import draw_cyclist, draw_cyclist_behind, draw_person
from demo.synthetic.vehicles import draw_vehicle, shadow_footprint

#: Nothing is placed closer than this (metres): it would fill the whole image.
MIN_DISTANCE = 3.0
#: Nominal (width, length) of vehicle shadows per class.
_FOOTPRINT = {L.CAR: (1.8, 4.4), L.TRUCK: (2.5, 8.0), L.BUS: (2.5, 12.0)}


@dataclass(frozen=True)
class Actor:
    """Something standing on the ground at distance ``z``.

    :param z: distance of its nearest face, metres (painter's order key).
    :param draw: draws it on the canvas.
    :param shadow: (1, 4, 3) world quad of its contact shadow (vehicles), or None.
    :param x: lateral world position, where known (test anomalies).
    """

    z: float
    draw: Callable[[], None]
    shadow: np.ndarray | None = None
    x: float | None = None


def clear_view(actors: list[Actor], obstacles: list[Actor], margin: float = 1.0) -> list[Actor]:
    """``actors`` without the vehicles that would stand on or in front of ``obstacles``.

    Lost-and-Found frames show obstacles on free road; a car parked over a tyre or right
    in front of it would leave an almost invisible anomaly.
    """
    kept: list[Actor] = []
    for actor in actors:
        if actor.shadow is not None:
            xs, zs = actor.shadow[0, :, 0], actor.shadow[0, :, 2]
            if any(
                obstacle.x is not None
                and xs.min() - margin < obstacle.x < xs.max() + margin
                and zs.min() < obstacle.z + margin
                for obstacle in obstacles
            ):
                continue
        kept.append(actor)
    return kept


def shadow_quads(actors: list[Actor]) -> list[np.ndarray]:
    """The contact-shadow quads of ``actors``."""
    return [actor.shadow for actor in actors if actor.shadow is not None]


def _spread(
    rng: np.random.Generator, count: int, near: float, far: float, gap: float
) -> list[float]:
    """Up to ``count`` sorted distances in [near, far] at least ``gap`` apart."""
    values = np.sort(rng.uniform(near, far, count))
    kept: list[float] = []
    for value in values:
        if not kept or value - kept[-1] >= gap:
            kept.append(float(value))
    return kept


def _vehicles(
    canvas: Canvas, street: Street, rng: np.random.Generator, actors: list[Actor]
) -> None:
    lane_edges = [street.road_left] + [x for x, _ in street.lane_lines] + [street.road_right]
    ego = next(i for i in range(len(lane_edges) - 1) if lane_edges[i] <= 0 < lane_edges[i + 1])
    for lane in range(len(lane_edges) - 1):
        centre = 0.5 * (lane_edges[lane] + lane_edges[lane + 1])
        oncoming = lane < ego and rng.random() < 0.6
        near = 8.0 if lane == ego else MIN_DISTANCE + 2.0
        for z in _spread(rng, int(rng.integers(0, 4)), near, 90.0, 14.0):
            kind = rng.choice([L.CAR, L.TRUCK, L.BUS], p=[0.76, 0.12, 0.12])
            _add_vehicle(
                street,
                rng,
                actors,
                canvas,
                int(kind),
                centre + rng.uniform(-0.3, 0.3),
                z,
                -1 if oncoming else 1,
            )
    for side in (-1, 1):
        if street.sidewalk[0 if side < 0 else 1] == 0 or rng.random() < 0.35:
            continue
        edge = street.edge(side, "road") - side * rng.uniform(1.0, 1.3)
        for z in _spread(rng, int(rng.integers(1, 7)), MIN_DISTANCE + 2, 70.0, 5.5):
            kind = L.CAR if rng.random() < 0.9 else L.TRUCK
            _add_vehicle(street, rng, actors, canvas, kind, edge, z, 1)


def _add_vehicle(
    street: Street,
    rng: np.random.Generator,
    actors: list[Actor],
    canvas: Canvas,
    kind: int,
    x: float,
    z: float,
    facing: int,
) -> None:
    world_x = x + float(street.centre(z))
    width, length = _FOOTPRINT[kind]
    seed = int(rng.integers(2**31))
    draw = partial(draw_vehicle, canvas, np.random.default_rng(seed), kind, world_x, z, facing)
    actors.append(Actor(z, draw, shadow_footprint(world_x, z, width, length)))


def _on(street: Street, side: int, band: str, rng: np.random.Generator) -> float:
    """A random X inside ``band`` ("sidewalk" or "curb") on ``side``."""
    inner = street.edge(side, "curb" if band == "sidewalk" else "road")
    outer = street.edge(side, band)
    return float(rng.uniform(min(inner, outer), max(inner, outer)))


def _people_and_furniture(
    canvas: Canvas, street: Street, rng: np.random.Generator, actors: list[Actor], z_end: float
) -> None:
    def add(z: float, function: Callable[..., None], x: float, *args: float | bool) -> None:
        world_x = x + float(street.centre(z))
        sub_rng = np.random.default_rng(int(rng.integers(2**31)))
        actors.append(Actor(z, partial(function, canvas, sub_rng, world_x, z, *args)))

    for side in (-1, 1):
        index = 0 if side < 0 else 1
        has_sidewalk = street.sidewalk[index] > 0
        kerb = street.edge(side, "curb") + side * 0.4
        far = min(z_end, 120.0)
        for z in np.arange(rng.uniform(MIN_DISTANCE, 25.0), far, rng.uniform(15.0, 35.0)):
            add(float(z), draw_lamp_post, kerb, -float(side))
        if has_sidewalk:
            for z in _spread(rng, int(rng.integers(0, 9)), MIN_DISTANCE, 55.0, 1.0):
                add(z, draw_person, _on(street, side, "sidewalk", rng))
            for z in _spread(rng, int(rng.integers(0, 4)), MIN_DISTANCE, 40.0, 1.5):
                add(z, draw_cyclist, _on(street, side, "sidewalk", rng), False)
        for z in _spread(rng, int(rng.integers(0, 4)), MIN_DISTANCE, 60.0, 6.0):
            add(z, draw_sign_post, kerb + side * rng.uniform(0.0, 0.5))
        if rng.random() < 0.5:
            tree_x = street.edge(side, "verge" if street.verge[index] > 0 else "sidewalk")
            start, step = rng.uniform(MIN_DISTANCE, 15.0), rng.uniform(7.0, 16.0)
            for z in np.arange(start, far, step):
                add(float(z), draw_tree, tree_x - side * rng.uniform(0.5, 1.0))
    if rng.random() < 0.35:
        z = street.crossing[0] - 1.0 if street.crossing else rng.uniform(10.0, 50.0)
        for side in (-1, 1):
            add(z, draw_traffic_light, street.edge(side, "curb") + side * 0.3, -float(side))
    for _ in range(int(rng.integers(0, 3))):
        x = rng.uniform(street.road_left + 0.5, street.road_right - 0.5)
        add(rng.uniform(6.0, 40.0), draw_person, x)
    for _ in range(int(rng.choice([0, 0, 1, 2]))):
        add(rng.uniform(6.0, 50.0), draw_cyclist_behind, street.road_right - rng.uniform(0.6, 1.2))
    if rng.random() < 0.3:
        x = rng.uniform(street.road_left + 0.5, street.road_right - 0.5)
        add(rng.uniform(6.0, 35.0), draw_cyclist, x, True)


def place_actors(
    canvas: Canvas, street: Street, rng: np.random.Generator, z_end: float
) -> list[Actor]:
    """Decide every actor of the frame; returns a list of :class:`Actor`."""
    actors: list[Actor] = []
    _vehicles(canvas, street, rng, actors)
    _people_and_furniture(canvas, street, rng, actors, z_end)
    return actors
