"""Noise textures and the per-frame material table that turns a material map into RGB.

Every drawn surface gets a *material*: a base colour (already shaded and hazed for its
distance), a fine-grain amplitude and a blotch amplitude. The renderer draws material
ids (uint16) and label ids side by side, then :meth:`MaterialTable.compose` makes the image
in a handful of whole-image operations, which is what keeps the world fast.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

#: Material ids a frame may use (uint16 map).
MAX_MATERIALS = 4096


class NoiseBank:
    """Pre-computed noise fields, cropped at random offsets for each frame.

    :param size: side of the square fields; must exceed the rendered width and height.
    :param seed: seed of the fields (the world is deterministic from its seed).
    """

    def __init__(self, size: int, seed: int) -> None:
        rng = np.random.default_rng([seed, 0x5EED])
        self.size = size
        fine = cv2.GaussianBlur(rng.standard_normal((size, size), dtype=np.float32), (0, 0), 0.7)
        self.fine = fine / fine.std()
        blotch = np.zeros((size, size), np.float32)
        for octave, weight in ((4, 0.15), (12, 0.35), (40, 0.5)):
            cells = max(2, size // octave)
            coarse = rng.standard_normal((cells, cells), dtype=np.float32)
            blotch += weight * cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
        self.blotch = blotch / blotch.std()

    def crop(
        self, field: np.ndarray, rng: np.random.Generator, shape: tuple[int, int]
    ) -> np.ndarray:
        """A (rows, cols) view of ``field`` at a random offset."""
        rows, cols = shape
        top = int(rng.integers(0, self.size - rows + 1))
        left = int(rng.integers(0, self.size - cols + 1))
        return field[top : top + rows, left : left + cols]


class MaterialTable:
    """Materials of one frame, with the frame's lighting and haze applied on creation.

    :param haze_color: RGB colour distant surfaces fade to.
    :param visibility: distance (metres) at which 63 % of a surface's colour is haze.
    :param exposure: global brightness gain.
    """

    def __init__(self, haze_color: np.ndarray, visibility: float, exposure: float) -> None:
        self.colors = np.zeros((MAX_MATERIALS, 3), np.float32)
        self.grain = np.zeros(MAX_MATERIALS, np.float32)
        self.blotch = np.zeros(MAX_MATERIALS, np.float32)
        self.ground = np.zeros(MAX_MATERIALS, bool)
        self.haze_color = np.asarray(haze_color, np.float32)
        self.visibility = visibility
        self.exposure = exposure
        self.count = 0

    def haze_weight(self, distance: float | np.ndarray) -> float | np.ndarray:
        """Fraction of haze in a surface's colour at ``distance`` metres."""
        return 1.0 - np.exp(-np.asarray(distance, np.float32) / self.visibility)

    def add(
        self,
        color: npt.ArrayLike,
        grain: float = 0.06,
        blotch: float = 0.08,
        shade: float = 1.0,
        distance: float = 0.0,
        ground: bool = False,
    ) -> int:
        """Register a material and return its id.

        :param color: RGB 0..255 base colour before lighting.
        :param grain: relative amplitude of the fine grain.
        :param blotch: relative amplitude of the large-scale blotches.
        :param shade: lighting factor of this surface (sun angle, shadow).
        :param distance: metres from the camera, for haze (ground: 0, hazed per row).
        :param ground: the ground plane (textured in world coordinates, hazed per row).
        :return: the material id; the last id is reused once the table is full.
        """
        index = min(self.count, MAX_MATERIALS - 1)
        self.count += 1
        lit = np.asarray(color, np.float32) * (shade * self.exposure)
        if distance > 0:
            weight = float(self.haze_weight(distance))
            lit = lit * (1.0 - weight) + self.haze_color * weight
        self.colors[index] = lit
        self.grain[index] = grain
        self.blotch[index] = blotch
        self.ground[index] = ground
        return index

    def compose(
        self,
        material: np.ndarray,
        grain: np.ndarray,
        blotch: np.ndarray,
        ground_haze: np.ndarray | None = None,
    ) -> np.ndarray:
        """Turn a material map into a float32 RGB image.

        :param material: (H, W) uint16 material ids.
        :param grain: (H, W) float32 fine noise (unit std).
        :param blotch: (H, W) float32 large-scale noise (unit std).
        :param ground_haze: (H,) float32 haze fraction per row for ground materials.
        :return: (H, W, 3) float32 RGB, not clipped.
        """
        modulation = 1.0 + self.grain[material] * grain + self.blotch[material] * blotch
        image = self.colors[material] * modulation[..., None]
        if ground_haze is not None:
            weight = np.where(self.ground[material], ground_haze[:, None], 0.0)[..., None]
            image += (self.haze_color - image) * weight
        return image


def jitter_color(
    rng: np.random.Generator, color: npt.ArrayLike, spread: float = 0.12
) -> np.ndarray:
    """``color`` with independent multiplicative jitter per channel and overall."""
    base = np.asarray(color, np.float32)
    overall = math.exp(rng.normal(0.0, spread))
    channels = np.exp(rng.normal(0.0, spread * 0.5, 3)).astype(np.float32)
    return np.clip(base * overall * channels, 0, 255)
