"""Camera image → network input, and network-size maps → camera size."""

from __future__ import annotations

import cv2
import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.model_info import ModelInfo
from anomaly_seg_ros.strips import ThreadScratch

#: The largest image accepted anywhere (decoders, ``anomaly-seg detect``, the Detector):
#: an 8192×4096 camera fits exactly; more is a corrupt header or a wrong camera setting. The
#: node parameter ``max_image_pixels`` defaults to it and may only lower it.
MAX_IMAGE_PIXELS = 8192 * 4096


def check_size(height: int, width: int, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Reject empty and oversized images before any memory is touched.

    :param max_pixels: the limit, at most :data:`MAX_IMAGE_PIXELS`.
    :raises InputError: zero size or more than ``max_pixels`` pixels.
    """
    if height <= 0 or width <= 0:
        raise InputError(f"zero-size image ({height}x{width}); the camera sent an empty frame")
    if height * width > max_pixels:
        hint = (
            f"raise parameter max_image_pixels (at most {MAX_IMAGE_PIXELS}) if this size is "
            "expected"
            if max_pixels < MAX_IMAGE_PIXELS
            else f"{MAX_IMAGE_PIXELS} = 8192x4096 is the largest image anomaly_seg_ros accepts"
        )
        raise InputError(
            f"image of {height}x{width} = {height * width} pixels exceeds the limit of "
            f"{max_pixels}; {hint}"
        )


def check_rgb(image: object) -> np.ndarray:
    """Return ``image`` if it is an (H, W, 3) uint8 array, else raise :class:`InputError`."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise InputError(f"image must be uint8, got {image.dtype}")
    check_size(image.shape[0], image.shape[1])
    return image


_SCRATCH = ThreadScratch()


def to_network_input(
    rgb: np.ndarray, info: ModelInfo, out: np.ndarray | None = None
) -> np.ndarray:
    """Resize to the model input, scale to [0, 1], normalize by mean/std, NCHW.

    Resize first (bilinear, all three channels in one call, if the sizes differ), then one
    channel at a time at the network size: extract, ``x · 1/(255·std) − mean/std``
    straight into the output plane. With ``out`` given this allocates nothing per frame
    (a fresh 1024×2048 blob costs more in page faults than the arithmetic).

    :param rgb: (H, W, 3) uint8 RGB at camera size.
    :param out: (1, 3, h, w) float32 C-contiguous array to write into, or None for a new one.
    :return: (1, 3, h, w) float32 contiguous, h×w = ``info.input_size`` (``out`` if given).
    """
    height, width = info.input_size
    shape = (1, 3, height, width)
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of {shape}")
    if rgb.shape[:2] != (height, width):
        small = _SCRATCH.get("resized", (height, width, 3), np.uint8)
        rgb = cv2.resize(rgb, (width, height), dst=small, interpolation=cv2.INTER_LINEAR)
    channel = _SCRATCH.get("channel", (height, width), np.uint8)
    order = (2, 1, 0) if info.channel_order == "BGR" else (0, 1, 2)
    for index, source in enumerate(order):
        cv2.extractChannel(rgb, source, dst=channel)
        scale = 1.0 / (255.0 * info.std[index])
        offset = -info.mean[index] / info.std[index]
        cv2.addWeighted(channel, scale, channel, 0.0, offset, dst=out[0, index], dtype=cv2.CV_32F)
    return out


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w[, 3]) uint8 → (H, W[, 3]) uint8 by nearest neighbour; ``size`` = (H, W)."""
    if labels.shape[:2] == tuple(size):
        return labels
    return cv2.resize(labels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def resize_score(score: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) float32 → (H, W) float32, bilinear; ``size`` = (H, W)."""
    if score.shape == size:
        return score
    return cv2.resize(score, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
