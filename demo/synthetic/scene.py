"""One frame of the synthetic driving world: camera, street, everything on it, the image.

:class:`World` holds what frames share (noise fields, image size) and renders a frame
from a ``numpy.random.Generator``; the same generator state gives the same frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from demo.synthetic import labels as L
from demo.synthetic.camera import Camera
from demo.synthetic.canvas import ANOMALY_LABEL, Canvas, Obstacle
from demo.synthetic.ground import Street, draw_ground, sample_street
from demo.synthetic.placement import Actor, clear_view, place_actors, shadow_quads
from demo.synthetic.roadside import draw_back_layer, draw_sides
from demo.synthetic.texture import MAX_MATERIALS, MaterialTable, NoiseBank

#: Adds test anomalies to a frame: ``(canvas, street, rng) -> list[Actor]``.
AnomalyPlacer = Callable[[Canvas, Street, np.random.Generator], list[Actor]]

#: (horizon colour, zenith colour, exposure range) per weather.
_WEATHERS = (
    ([200, 215, 230], [90, 140, 205], (0.9, 1.15)),  # clear
    ([190, 192, 196], [150, 155, 165], (0.75, 1.05)),  # overcast
    ([235, 190, 150], [110, 120, 170], (0.65, 0.95)),  # low sun
    ([170, 178, 186], [120, 130, 145], (0.55, 0.8)),  # dull, dark
)


@dataclass(frozen=True)
class Frame:
    """A rendered frame.

    :param image: (H, W, 3) uint8 RGB.
    :param label_ids: (H, W) uint8 official Cityscapes label ids.
    :param anomaly: (H, W) bool, pixels of test anomalies (all False without anomalies).
    :param obstacles: ground truth of the test anomalies drawn, in world coordinates.
    :param camera: the frame's camera.
    """

    image: np.ndarray
    label_ids: np.ndarray
    anomaly: np.ndarray
    obstacles: tuple[Obstacle, ...] = ()
    camera: Camera | None = None


class World:
    """The procedural world at one image size.

    :param height: image rows.
    :param width: image columns.
    :param seed: seed of the shared noise fields.
    """

    def __init__(self, height: int = 256, width: int = 512, seed: int = 0) -> None:
        if height < 32 or width < 32:
            raise ValueError(f"image size {height}x{width} is too small; use at least 32x32")
        self.height, self.width = height, width
        self.noise = NoiseBank(max(height, width) + 128, seed)
        rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
        radius = np.hypot((cols - width / 2) / width, (rows - height / 2) / width)
        self._vignette = (1.0 - 0.6 * radius**2)[..., None]

    def camera(self, rng: np.random.Generator) -> Camera:
        """A random camera: focal length, mounting height, pitch."""
        return Camera(
            self.height,
            self.width,
            focal=self.width * rng.uniform(0.9, 1.25),
            height=rng.uniform(1.1, 1.9),
            pitch=math.radians(rng.uniform(-1.0, 4.0)),
            cy_offset=self.height * rng.uniform(-0.04, 0.06),
        )

    def render(self, rng: np.random.Generator, anomalies: AnomalyPlacer | None = None) -> Frame:
        """Render one frame.

        :param rng: the frame's random generator.
        :param anomalies: optional callable ``(canvas, street, rng) -> list[Actor]``
            adding test anomalies on the road (vehicles on or in front of them are removed;
            see :mod:`demo.synthetic.anomalies`).
        :return: the frame.
        """
        camera = self.camera(rng)
        horizon_rgb, zenith_rgb, exposure = _WEATHERS[rng.choice(4, p=(0.45, 0.3, 0.15, 0.1))]
        horizon = np.asarray(horizon_rgb, np.float32) * rng.uniform(0.9, 1.08, 3)
        zenith = np.asarray(zenith_rgb, np.float32) * rng.uniform(0.9, 1.08, 3)
        materials = MaterialTable(
            horizon * 0.95, rng.uniform(150.0, 900.0), rng.uniform(*exposure)
        )
        sky = materials.add([0, 0, 0], 0.0, 0.0)
        canvas = Canvas(camera, materials)
        canvas.label[:] = L.SKY
        canvas.material[:] = sky

        street = sample_street(rng)
        z_end = rng.uniform(60.0, 250.0)
        first, ground_grain, ground_z = draw_ground(canvas, street, rng, self.noise)
        actors = place_actors(canvas, street, rng, z_end)
        if anomalies is not None:
            obstacles = anomalies(canvas, street, rng)
            actors = clear_view(actors, obstacles) + obstacles
        self._shadows(canvas, street, rng, shadow_quads(actors))
        draw_back_layer(canvas, street, rng, z_end)
        draw_sides(canvas, street, rng, z_end)
        for actor in sorted(actors, key=lambda item: -item.z):
            actor.draw()
        if rng.random() < 0.5:
            self._ego_hood(canvas, rng)

        grain = self.noise.crop(self.noise.fine, rng, (self.height, self.width)).copy()
        ground = materials.ground[canvas.material[first:]]
        grain[first:] = np.where(ground, ground_grain, grain[first:])
        blotch = self.noise.crop(self.noise.blotch, rng, (self.height, self.width))
        row_haze = np.zeros(self.height, np.float32)
        row_haze[first:] = materials.haze_weight(ground_z)
        image = materials.compose(canvas.material, grain, blotch, row_haze)
        image = self._sky(image, canvas, camera, sky, horizon, zenith, blotch, materials.exposure)
        image = self._camera_effects(image, rng)
        anomaly = canvas.label == ANOMALY_LABEL
        label_ids = canvas.label.copy()
        # Test anomalies lie on the road: the Cityscapes label underneath is not defined.
        label_ids[anomaly] = L.UNLABELED
        return Frame(image, label_ids, anomaly, tuple(canvas.obstacles), camera)

    def _shadows(
        self, canvas: Canvas, street: Street, rng: np.random.Generator, quads: list[np.ndarray]
    ) -> None:
        """Darken the ground under vehicles and in random building shadows."""
        if rng.random() < 0.5:
            side = int(rng.choice([-1, 1]))
            outer = street.frontage[0 if side < 0 else 1]
            z = rng.uniform(0.0, 10.0)
            while z < 150.0:
                length = rng.uniform(8.0, 35.0)
                reach = outer - side * rng.uniform(2.0, 14.0)
                quad = np.asarray(
                    [
                        [
                            [outer, 0, z],
                            [reach, 0, z],
                            [reach, 0, z + length],
                            [outer, 0, z + length],
                        ]
                    ],
                    np.float32,
                )
                quad[..., 0] += street.centre(quad[..., 2])
                quads.append(quad)
                z += length + rng.uniform(0.0, 15.0)
        if not quads:
            return
        mask = np.zeros(canvas.material.shape, np.uint8)
        polygons = canvas.polygons(np.concatenate(quads))
        cv2.fillPoly(mask, polygons, 1, cv2.LINE_8, 3)
        materials = canvas.materials
        darker = np.arange(MAX_MATERIALS, dtype=np.uint16)
        factor = rng.uniform(0.45, 0.7)
        for index in np.flatnonzero(materials.ground[: materials.count]):
            darker[index] = materials.add(
                materials.colors[index] * factor / materials.exposure,
                materials.grain[index],
                materials.blotch[index],
                ground=True,
            )
        canvas.material[:] = np.where(mask.astype(bool), darker[canvas.material], canvas.material)

    def _ego_hood(self, canvas: Canvas, rng: np.random.Generator) -> None:
        """The bonnet of the recording car at the bottom (void in Cityscapes)."""
        top = self.height * rng.uniform(0.86, 0.95)
        sag = self.height * rng.uniform(0.02, 0.06)
        xs = np.linspace(-0.05, 1.05, 24) * self.width
        ys = top + sag * ((xs / self.width - 0.5) * 2) ** 2
        points = np.concatenate(
            [np.stack([xs, ys], -1), [[xs[-1], self.height], [xs[0], self.height]]]
        )
        paint = canvas.materials.add(rng.uniform(20, 120, 3), 0.03, 0.25, rng.uniform(0.6, 1.0))
        polygon = [np.round(points * 8).astype(np.int32)]
        cv2.fillPoly(canvas.material, polygon, paint, cv2.LINE_8, 3)
        cv2.fillPoly(canvas.label, polygon, L.EGO_VEHICLE, cv2.LINE_8, 3)

    def _sky(
        self,
        image: np.ndarray,
        canvas: Canvas,
        camera: Camera,
        sky: int,
        horizon: np.ndarray,
        zenith: np.ndarray,
        blotch: np.ndarray,
        exposure: float,
    ) -> np.ndarray:
        """A vertical gradient with soft clouds where nothing else was drawn."""
        rows = np.arange(self.height, dtype=np.float32)
        t = np.clip((camera.horizon_row - rows) / max(camera.horizon_row, 1.0), 0.0, 1.0)
        colors = (horizon[None] * (1 - t[:, None]) + zenith[None] * t[:, None]) * exposure
        clouds = 1.0 + 0.12 * blotch
        sky_pixels = (canvas.material == sky)[..., None]
        return np.where(sky_pixels, colors[:, None, :] * clouds[..., None], image)

    def _camera_effects(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Colour cast, contrast, vignetting, optical blur, sensor noise; to uint8."""
        image *= rng.uniform(0.9, 1.1, 3).astype(np.float32)
        contrast = np.float32(rng.uniform(0.85, 1.2))
        image = (image - 110.0) * contrast + 110.0
        image *= self._vignette
        sigma = rng.uniform(0.3, 1.0)
        image = cv2.GaussianBlur(image, (0, 0), sigma)
        noise = self.noise.crop(self.noise.fine, rng, (self.height, self.width))
        image += noise[..., None] * np.float32(rng.uniform(1.0, 4.0))
        return np.clip(image, 0, 255).astype(np.uint8)
