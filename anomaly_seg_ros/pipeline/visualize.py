"""Colours for labels and anomalies: the model's palette and a viewing overlay."""

from __future__ import annotations

import functools

import cv2
import numpy as np

from anomaly_seg_ros.model.classes import CITYSCAPES_COLORS, palette_table
from anomaly_seg_ros.model.sidecar import ModelInfo

#: outline colour of anomaly components in the overlay (RGB)
OUTLINE_COLOR = (255, 255, 0)
#: Outlines are 1 px per 400 px of the longer side, at most this thick: it stops growing at
#: 12,800 px, where OpenCV would otherwise be asked for lines thicker than it draws (32767
#: px, a side over 13.1 M px; a 1 x 33,554,432 image fits the pixel limit).
MAX_OUTLINE_THICKNESS = 32


@functools.lru_cache(maxsize=1)
def cityscapes_palette() -> np.ndarray:
    """(256, 3) uint8 RGB lookup table: train ID → Cityscapes colour, void black.

    Do not write into it: it is shared (cached).
    """
    return palette_table(CITYSCAPES_COLORS)


def model_palette(info: ModelInfo) -> np.ndarray:
    """(256, 3) uint8 RGB lookup table of a model: its sidecar's ``class_colors``, or
    the Cityscapes colours by train ID when the sidecar has none."""
    return palette_table(info.class_colors) if info.class_colors else cityscapes_palette()


def colorize_labels(labels: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """(H, W) uint8 train IDs → (H, W, 3) uint8 RGB.

    :param palette: (256, 3) uint8 RGB table; default :func:`cityscapes_palette`.
    """
    table = cityscapes_palette() if palette is None else palette
    lookup = labels.dtype == np.uint8 and labels.ndim == 2 and labels.size > 0
    if not (lookup and table.shape == (256, 3) and table.dtype == np.uint8):
        return table[labels]
    # OpenCV's table lookup on a 3-channel copy is ~8× faster than numpy fancy indexing.
    return cv2.LUT(cv2.merge([labels, labels, labels]), table.reshape(256, 1, 3))


@functools.lru_cache(maxsize=1)
def _inferno_rgb() -> np.ndarray:
    """(256, 1, 3) uint8: OpenCV's inferno colour map in RGB order, as a user colour map
    (one lookup instead of the BGR map and a conversion, same pixels)."""
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    return np.ascontiguousarray(cv2.applyColorMap(ramp, cv2.COLORMAP_INFERNO)[..., ::-1])


def heat_colors(score: np.ndarray, low: float, high: float) -> np.ndarray:
    """(H, W) float32 → (H, W, 3) uint8 RGB through the inferno colour map on [low, high].

    Colour index ``clip((score - low) * 255 / (high - low), 0, 255)`` truncated to an
    integer, worked out in place in one float32 buffer (the same numbers as the expression).
    """
    span = max(high - low, 1e-6)
    scaled = np.subtract(score, low)  # the expression's dtype: float32 for float32 scores
    scaled *= 255.0 / span
    np.clip(scaled, 0, 255, out=scaled)
    return cv2.applyColorMap(scaled.astype(np.uint8), _inferno_rgb())


#: Where the mask threshold sits on the colour scale of :func:`score_display_range`.
THRESHOLD_POSITION = 0.25


def score_display_range(score: np.ndarray, threshold: float | None = None) -> tuple[float, float]:
    """A colour scale for heat maps of the anomaly score on which obstacles stand out.

    A scale spread over all scores spends most of its colours on what is of no interest
    (with VDE the lowered outside of the road, without it the spread of ordinary pixels),
    and the road, where an obstacle matters, comes out in one flat colour. The threshold
    is what the node calls anomalous: it is put at :data:`THRESHOLD_POSITION` of the scale
    and the top at the 99th percentile of the scores above it. A calibrated threshold
    passes few ordinary pixels, so the road sits in the dark quarter and what the node
    flags fills the bright three quarters. Without a threshold, or with no score above
    it, the scale is the 75th to 99.9th percentile: the upper quarter of the scores.

    :param score: float32 scores of any shape (one frame, or samples of many frames).
    :param threshold: the mask threshold (``score > threshold`` is anomalous), or None.
    :return: (low, high), high > low.
    """
    values = np.asarray(score, np.float32).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    if threshold is not None and (above := values[values > threshold]).size:
        top = max(float(np.percentile(above, 99.0)), threshold + 1e-3)
        scale = (top - threshold) / (1.0 - THRESHOLD_POSITION)
        return threshold - THRESHOLD_POSITION * scale, top
    low, high = (float(v) for v in np.percentile(values, (75.0, 99.9)))
    return low, max(high, low + 1e-3)


def overlay(
    rgb: np.ndarray,
    labels_color: np.ndarray,
    score: np.ndarray,
    mask: np.ndarray,
    alpha: float = 0.5,
) -> np.ndarray:
    """A picture for people: labels blended over the image, anomalies as heat and outlines.

    :param rgb: (H, W, 3) uint8 camera image.
    :param labels_color: (H, W, 3) uint8 colourised labels.
    :param score: (H, W) float32 anomaly score.
    :param mask: (H, W) bool anomaly mask.
    :param alpha: opacity of the label colours.
    :return: (H, W, 3) uint8 RGB.
    """
    picture = cv2.addWeighted(rgb, 1.0 - alpha, labels_color, alpha, 0.0)
    mask_u8 = mask.view(np.uint8)
    if mask.any():
        # Heat only where it shows: inside the mask's bounding box (the colour scale is the
        # masked scores' own range, lowest to highest, as before).
        left, top, width, height = cv2.boundingRect(mask_u8)
        box = (slice(top, top + height), slice(left, left + width))
        low, high, _, _ = cv2.minMaxLoc(score[box], mask_u8[box])
        heat = heat_colors(score[box], low, high)
        blended = cv2.addWeighted(rgb[box], 0.3, heat, 0.7, 0.0)
        cv2.copyTo(blended, mask_u8[box], picture[box])
        contours, _ = cv2.findContours(mask_u8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        thickness = min(max(1, round(max(rgb.shape[:2]) / 400)), MAX_OUTLINE_THICKNESS)
        cv2.drawContours(picture, contours, -1, OUTLINE_COLOR, thickness)
    return picture
