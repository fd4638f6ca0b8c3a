"""Training samples for anomaly fine-tuning: frame → scale → AnomalyMix → OoD-aware crop.

Frames come from any *frame source*: an object with ``len()`` and
``read(index) -> (rgb (H, W, 3) uint8, labels (H, W) uint8 train IDs, 255 void)``, e.g. the
Cityscapes-layout reader of :mod:`anomaly_seg_ros.datasets`. The order matters: the object
is pasted into the scaled frame, so its size range is relative to what the network sees,
and the crop is cut afterwards so that it always contains the object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import torch

from training.anomalymix import AnomalyMix, ood_aware_crop
from training.augment import jitter_colors
from training.seg_dataset import to_tensor


class FrameSource(Protocol):
    """What the fine-tuning data pipeline reads frames from."""

    def __len__(self) -> int: ...

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class SampleConfig:
    """Geometry of a training sample.

    :param crop_size: (height, width) of the training crop.
    :param scale_range: frames are resized by a factor drawn from this range first.
    :param flip: random horizontal flip.
    :param color_jitter: brightness/contrast/saturation jitter strength (0 = off), applied
        to the whole crop after pasting.
    """

    crop_size: tuple[int, int] = (512, 1024)
    scale_range: tuple[float, float] = (0.5, 1.0)
    flip: bool = True
    color_jitter: float = 0.0


def input_bounds(mean: Sequence[float], std: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (low, high), each (1, 3, 1, 1): normalized values of RGB 0 and 255."""
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return -mean_t / std_t, (1.0 - mean_t) / std_t


class OodTrainingSet(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Map-style dataset of ``(image (3, h, w) float32, labels (h, w) int64)`` samples.

    Randomness is a function of (seed, epoch, index), so a resumed run and every DataLoader
    worker draw the same samples as an uninterrupted run; call :meth:`set_epoch`.

    :param frames: the frame source.
    :param mix: AnomalyMix, or None (no pasted objects, e.g. with MGU as the OoD source).
    :param config: sample geometry.
    :param mean: normalization mean (RGB, [0, 1] scale).
    :param std: normalization std.
    :param seed: base seed.
    """

    def __init__(
        self,
        frames: FrameSource,
        mix: AnomalyMix | None,
        config: SampleConfig,
        mean: Sequence[float],
        std: Sequence[float],
        seed: int = 0,
    ) -> None:
        self.frames = frames
        self.mix = mix
        self.config = config
        self.mean, self.std = tuple(mean), tuple(std)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        image, labels = self.frames.read(index)
        low, high = self.config.scale_range
        factor = rng.uniform(low, high)
        if abs(factor - 1.0) > 1e-3:
            size = (
                max(1, round(labels.shape[1] * factor)),
                max(1, round(labels.shape[0] * factor)),
            )
            image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
            labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
        box = None
        if self.mix is not None:
            mixed = self.mix(image, labels, rng)
            image, labels, box = mixed.image, mixed.labels, mixed.box
        image, labels = ood_aware_crop(image, labels, self.config.crop_size, box, rng)
        if self.config.flip and rng.random() < 0.5:
            image, labels = image[:, ::-1], labels[:, ::-1]
        if self.config.color_jitter > 0:
            image = jitter_colors(image, self.config.color_jitter, rng)
        return to_tensor(image, self.mean, self.std), torch.from_numpy(labels.astype(np.int64))


class IndexableFrames(Protocol):
    """Anything with a length whose items are ``(rgb, labels)`` pairs."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]: ...


class IndexedFrames:
    """A frame source over anything indexable that yields ``(rgb, labels)`` pairs: a list of
    arrays, or :class:`anomaly_seg_ros.datasets.cityscapes.CityscapesDataset` (not copied,
    so frames are still read lazily).

    :param frames: the indexable.
    :param limit: use only the first ``limit`` frames.
    """

    def __init__(self, frames: IndexableFrames, limit: int | None = None) -> None:
        self.frames = frames
        self.count = len(frames) if limit is None else min(limit, len(frames))

    def __len__(self) -> int:
        return self.count

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < self.count:
            raise IndexError(index)
        return self.frames[index]
