"""Proxy OoD object bank (family b): a stand-in for MS COCO objects, with instance masks.

Flat, brightly patterned objects (Fourier blobs, stars, crescents, polygons, capsules and
two-part "composites") on indoor-looking backgrounds, 1–3 non-overlapping objects per
image. Their shapes, saturated colour statistics and patterns are deliberately unlike
the test anomalies of :mod:`demo.synthetic.anomalies` (earthy boxes, tyres, animals
lying on a road in perspective), so a model fine-tuned on this bank is evaluated on
anomalies it has never seen, as with COCO vs. Fishyscapes.
"""

from __future__ import annotations

import cv2
import numpy as np

#: COCO-style categories of the bank (ids start at 1, as in COCO).
CATEGORIES = ("blob", "star", "crescent", "polygon", "capsule", "composite")

#: Side of the square bank images (the world's stand-in for COCO images).
BANK_IMAGE_SIZE = 256


def _outline(rng: np.random.Generator, category: str, radius: float) -> np.ndarray:
    """(N, 2) float outline of one object around the origin."""
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    if category == "blob":
        r = np.ones_like(angles)
        for harmonic in range(2, 6):
            r += rng.uniform(0.0, 0.25 / harmonic * 2) * np.cos(
                harmonic * angles + rng.uniform(0, 6.3)
            )
        points = np.stack([np.cos(angles), np.sin(angles)], -1) * r[:, None]
    elif category == "star":
        tips = int(rng.integers(4, 9))
        angles = np.linspace(0, 2 * np.pi, 2 * tips, endpoint=False)
        r = np.where(np.arange(2 * tips) % 2 == 0, 1.0, rng.uniform(0.35, 0.6))
        points = np.stack([np.cos(angles), np.sin(angles)], -1) * r[:, None]
    elif category == "crescent":
        outer = np.stack([np.cos(angles[:33] * 1.0), np.sin(angles[:33])], -1)
        shift = rng.uniform(0.3, 0.6)
        inner = np.stack(
            [
                np.cos(angles[:33][::-1]) * (1 - shift) + shift * 0.2,
                np.sin(angles[:33][::-1]) * (1 - shift * 0.5),
            ],
            -1,
        )
        points = np.concatenate([outer, inner])
    elif category == "polygon":
        corners = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
        points = np.stack([np.cos(angles), np.sin(angles)], -1) * rng.uniform(
            0.7, 1.0, (corners, 1)
        )
    else:  # capsule (composites are two capsules/blobs, see _draw_object)
        aspect = rng.uniform(0.25, 0.55)
        half = np.linspace(-np.pi / 2, np.pi / 2, 16)
        right = np.stack([1 - aspect + aspect * np.cos(half), aspect * np.sin(half)], -1)
        points = np.concatenate([right, -right])
    rotation = rng.uniform(0, 2 * np.pi)
    rot = np.asarray([[np.cos(rotation), -np.sin(rotation)], [np.sin(rotation), np.cos(rotation)]])
    return points @ rot.T * radius


def _pattern(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) float32 saturated pattern: stripes, checkers, dots, gradient or plain."""
    hues = rng.uniform(0, 180, 2)
    colors = []
    for hue in hues:
        hsv = np.array([[[hue, rng.uniform(150, 255), rng.uniform(120, 255)]]], np.uint8)
        colors.append(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32))
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    period = rng.uniform(6, 24)
    kind = int(rng.integers(5))
    if kind == 0:
        angle = rng.uniform(0, np.pi)
        t = ((rows * np.cos(angle) + cols * np.sin(angle)) % period) < period / 2
    elif kind == 1:
        t = ((rows // period + cols // period) % 2) == 0
    elif kind == 2:
        t = np.hypot(rows % period - period / 2, cols % period - period / 2) < period / 3
    elif kind == 3:
        t = cols / max(shape[1] - 1, 1)
    else:
        t = np.zeros(shape, np.float32)
    t = np.asarray(t, np.float32)[..., None]
    return colors[0] * (1 - t) + colors[1] * t


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth indoor-like background: two-colour gradient plus soft noise."""
    top, bottom = rng.uniform(60, 230, 3), rng.uniform(40, 200, 3)
    t = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    image = np.broadcast_to(top * (1 - t) + bottom * t, (size, size, 3)).astype(np.float32)
    noise = cv2.resize(rng.standard_normal((8, 8)).astype(np.float32), (size, size))
    return image + 15.0 * noise[..., None]


def _draw_object(
    rng: np.random.Generator,
    image: np.ndarray,
    mask: np.ndarray,
    category: str,
    centre: tuple[float, float],
    radius: float,
) -> np.ndarray:
    parts = (
        [("capsule", radius), ("blob", radius * 0.6)]
        if category == "composite"
        else [(category, radius)]
    )
    object_mask = np.zeros(mask.shape, np.uint8)
    offset = np.zeros(2)
    for part, part_radius in parts:
        outline = _outline(rng, part, part_radius) + np.asarray(centre) + offset
        cv2.fillPoly(object_mask, [np.round(outline * 4).astype(np.int32)], 1, cv2.LINE_8, 2)
        offset = rng.uniform(-1, 1, 2) * radius * 0.7
    region = object_mask.astype(bool) & ~mask.astype(bool)
    pattern = _pattern(rng, mask.shape)
    shading = np.linspace(
        rng.uniform(0.7, 1.0), rng.uniform(1.0, 1.2), mask.shape[1], dtype=np.float32
    )
    image[region] = (pattern * shading[None, :, None])[region]
    return region


def render_bank_image(
    rng: np.random.Generator, size: int = BANK_IMAGE_SIZE
) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """One bank image and its objects.

    :return: ``(image, objects)``: (size, size, 3) uint8 RGB and a list of
        ``(category_index, mask)`` with (size, size) bool masks (non-overlapping).
    """
    image = _background(rng, size)
    taken = np.zeros((size, size), np.uint8)
    objects: list[tuple[int, np.ndarray]] = []
    cells = [(r, c) for r in range(2) for c in range(2)]
    order = rng.permutation(len(cells))[: int(rng.integers(1, 4))]
    for index in order:
        row, col = cells[index]
        radius = rng.uniform(0.12, 0.22) * size
        centre = (
            (col + 0.5) * size / 2 + rng.uniform(-0.1, 0.1) * size,
            (row + 0.5) * size / 2 + rng.uniform(-0.1, 0.1) * size,
        )
        category = int(rng.integers(len(CATEGORIES)))
        region = _draw_object(rng, image, taken, CATEGORIES[category], centre, radius)
        if region.sum() >= 64:
            taken[region] = 1
            objects.append((category, region))
    image = cv2.GaussianBlur(image, (0, 0), 0.6)
    return np.clip(image, 0, 255).astype(np.uint8), objects


def mask_polygons(mask: np.ndarray) -> list[list[float]]:
    """COCO polygons ``[[x1, y1, x2, y2, ...], ...]`` of a binary mask's outer contours."""
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    polygons = []
    for contour in contours:
        if len(contour) >= 3:
            polygons.append([float(v) for v in contour.reshape(-1)])
    return polygons
