"""torch Dataset over a Cityscapes-layout split, with augmentation and normalisation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from anomaly_seg_ros.datasets.cityscapes import CityscapesDataset
from anomaly_seg_ros.model.sidecar import IMAGENET_MEAN, IMAGENET_STD
from training.augment import IGNORE_INDEX, Augmentation


def to_tensor(
    image: np.ndarray,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 normalised as the exported model expects."""
    scaled = image.astype(np.float32) / 255.0
    normalised = (scaled - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))


class SegmentationDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """``dataset[i] -> (image (3, H, W) float32, train ids (H, W) int64)``.

    :param frames: the Cityscapes-layout reader.
    :param augmentation: random augmentation, or None (validation: full frames).
    :param seed: base seed; each (epoch, index) draws its own augmentation.
    """

    def __init__(
        self, frames: CityscapesDataset, augmentation: Augmentation | None, seed: int = 0
    ) -> None:
        self.frames = frames
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.frames)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draws (call once per epoch, like DistributedSampler)."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.frames[index]
        if self.augmentation is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image, label = self.augmentation(image, label, rng)
        return to_tensor(image), torch.from_numpy(label.astype(np.int64))


def class_weights(frames: CityscapesDataset, num_classes: int, samples: int = 200) -> torch.Tensor:
    """Inverse square-root frequency weights (mean 1 over present classes).

    Measured on up to ``samples`` evenly spaced training labels; rare thin classes (poles,
    signs, riders) get more weight, absent classes weight 0.
    """
    counts = np.zeros(num_classes, np.int64)
    step = max(1, len(frames) // samples)
    for index in range(0, len(frames), step):
        _, label = frames[index]
        valid = label[label != IGNORE_INDEX]
        counts += np.bincount(valid.ravel(), minlength=num_classes)[:num_classes]
    present = counts > 0
    weights = np.zeros(num_classes, np.float64)
    weights[present] = 1.0 / np.sqrt(counts[present] / counts.sum())
    weights[present] /= weights[present].mean()
    return torch.tensor(weights, dtype=torch.float32)
