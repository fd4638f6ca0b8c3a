"""Camera image → network input, and network-size maps → camera size."""

from __future__ import annotations

import cv2
import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.model_info import ModelInfo

#: Refuse images larger than this many pixels (a 8K×8K frame is a corrupt header, not a camera).
MAX_PIXELS = 64_000_000


def check_rgb(image: object) -> np.ndarray:
    """Return ``image`` if it is an (H, W, 3) uint8 array, else raise :class:`InputError`."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise InputError(f"image must be uint8, got {image.dtype}")
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise InputError(f"image is empty ({height}×{width})")
    if height * width > MAX_PIXELS:
        raise InputError(f"image of {height}×{width} exceeds {MAX_PIXELS} pixels")
    return image


def to_network_input(rgb: np.ndarray, info: ModelInfo) -> np.ndarray:
    """Resize to the model input, scale to [0, 1], normalize by mean/std, NCHW.

    :param rgb: (H, W, 3) uint8 RGB at camera size.
    :return: (1, 3, h, w) float32 contiguous, h×w = ``info.input_size``.
    """
    height, width = info.input_size
    if rgb.shape[:2] != (height, width):
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
    mean = np.asarray(info.mean, dtype=np.float64) * 255.0
    # blobFromImage computes (x − mean) · scale in NCHW in one pass; the per-channel std
    # division follows in place.
    blob = cv2.dnn.blobFromImage(
        rgb, 1.0 / 255.0, None, tuple(mean), swapRB=info.channel_order == "BGR", crop=False
    )
    blob[0] /= np.asarray(info.std, dtype=np.float32)[:, None, None]
    return blob


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) uint8 → (H, W) uint8 by nearest neighbour; ``size`` = (H, W)."""
    if labels.shape == size:
        return labels
    return cv2.resize(labels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def resize_score(score: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) float32 → (H, W) float32, bilinear; ``size`` = (H, W)."""
    if score.shape == size:
        return score
    return cv2.resize(score, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
