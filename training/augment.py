"""Segmentation augmentation on numpy arrays: random scale, crop, flip, colour jitter.

Images are (H, W, 3) uint8 RGB, labels (H, W) uint8 train ids; padding uses the ignore
id 255 for labels, so padded pixels never enter the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

IGNORE_INDEX = 255


@dataclass(frozen=True)
class Augmentation:
    """Random scale -> random crop (pad if needed) -> flip -> colour jitter.

    :param crop_size: (height, width) of the output.
    :param scale_range: (min, max) resize factor, drawn uniformly.
    :param flip: mirror left-right with probability 0.5.
    :param color_jitter: strength of brightness/contrast/saturation jitter (0 = off).
    """

    crop_size: tuple[int, int]
    scale_range: tuple[float, float] = (0.75, 1.5)
    flip: bool = True
    color_jitter: float = 0.3

    def __call__(
        self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """:return: augmented ``(image, label)`` of size ``crop_size``."""
        scale = rng.uniform(*self.scale_range)
        height, width = label.shape
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if scale != 1.0:
            image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
            label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
        image, label = random_crop(image, label, self.crop_size, rng)
        if self.flip and rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        if self.color_jitter > 0:
            image = jitter_colors(image, self.color_jitter, rng)
        return np.ascontiguousarray(image), np.ascontiguousarray(label)


def random_crop(
    image: np.ndarray, label: np.ndarray, crop_size: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Crop (padding first where the input is smaller) to ``crop_size``."""
    crop_h, crop_w = crop_size
    height, width = label.shape
    pad_h, pad_w = max(0, crop_h - height), max(0, crop_w - width)
    if pad_h or pad_w:
        image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=0)
        label = cv2.copyMakeBorder(
            label, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=IGNORE_INDEX
        )
        height, width = label.shape
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    return (
        image[top : top + crop_h, left : left + crop_w],
        label[top : top + crop_h, left : left + crop_w],
    )


def jitter_colors(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast and saturation, each by up to ``strength``."""
    values = image.astype(np.float32)
    brightness = 1.0 + rng.uniform(-strength, strength)
    contrast = 1.0 + rng.uniform(-strength, strength)
    saturation = 1.0 + rng.uniform(-strength, strength)
    gray = values.mean(axis=2, keepdims=True)
    values = gray + (values - gray) * saturation
    values = (values - values.mean()) * contrast + values.mean()
    values *= brightness
    return np.clip(values, 0, 255).astype(np.uint8)
