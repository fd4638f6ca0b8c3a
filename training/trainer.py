"""The supervised trainer: :class:`~training.loop.Loop` with a cross-entropy step.

Cross-entropy (ignore 255) on logits upsampled to the label size, SGD or AdamW with linear
warm-up and poly decay. The decay runs over ``iterations`` or, when
``time_budget_minutes`` is set, over whichever of the two ends first, so a run on a busy
machine still finishes its schedule.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Sampler

from anomaly_seg_ros.datasets.cityscapes import CityscapesDataset
from training import distributed
from training.config import TrainConfig
from training.loop import Hook, Loop
from training.seg_dataset import SegmentationDataset
from training.seg_eval import ValMetrics

#: One training batch: images (N, 3, H, W) float32, labels (N, H, W) int64.
Batch = tuple[torch.Tensor, torch.Tensor]


def checkpoint_files(out_dir: Path) -> tuple[Path, Path]:
    """(weights checkpoint, training state) paths of a run folder."""
    return out_dir / "checkpoint.pt", out_dir / "train_state.pt"


class Trainer(Loop[Batch]):
    """Supervised training: the loop with the network, its optimizer and a time budget.

    :param config: the frozen config.
    :param context: process placement (rank, device).
    :param network: the network (wrapped in DDP when distributed).
    :param optimizer: its optimizer.
    :param train_data: the augmented training dataset.
    :param val_frames: validation frames, or None to skip validation.
    :param hooks: called in order around every step.
    """

    def __init__(
        self,
        config: TrainConfig,
        context: distributed.DistributedContext,
        network: nn.Module,
        optimizer: torch.optim.Optimizer,
        train_data: SegmentationDataset,
        val_frames: CityscapesDataset | None,
        hooks: Sequence[Hook[Any]],
        criterion: nn.Module,
    ) -> None:
        super().__init__(config.iterations, hooks)
        self.config, self.context = config, context
        self.network, self.optimizer = network, optimizer
        self.train_data, self.val_frames = train_data, val_frames
        self.criterion = criterion
        self.class_names = train_data.frames.class_names[: config.num_classes]
        self.out_dir = Path(config.out_dir)
        self.checkpoint_path, self.state_path = checkpoint_files(self.out_dir)
        self.current_lr = config.lr
        self.val_metrics: ValMetrics | None = None

    @property
    def module(self) -> nn.Module:
        """The network without its DDP wrapper."""
        module: nn.Module = getattr(self.network, "module", self.network)
        return module

    @property
    def last_loss(self) -> float:
        """The loss of the last step (NaN before the first)."""
        return self.last.get("loss", float("nan"))

    @property
    def progress(self) -> float:
        """Fraction of the schedule done: by iterations or by wall time, whichever leads."""
        done = self.iteration / self.config.iterations
        if self.config.time_budget_minutes:
            done = max(done, self.elapsed / (60.0 * self.config.time_budget_minutes))
        return min(done, 1.0)

    def lr_factor(self) -> float:
        """Linear warm-up, then poly decay over :attr:`progress`."""
        warmup = min(1.0, (self.iteration + 1) / max(1, self.config.warmup_iterations))
        return float(warmup * (1.0 - self.progress) ** self.config.poly_power)

    def clock(self, seconds: float) -> float:
        """Rank 0's elapsed time, so that every process ends the schedule at the same step."""
        return distributed.broadcast_float(seconds, self.context)

    def batches(self) -> Iterator[Batch]:
        """Endless batches; every epoch re-draws the order and the augmentation."""
        epoch = self.iteration // max(1, len(self.train_data) // self.config.batch_size)
        while True:
            self.train_data.set_epoch(epoch)
            sampler: Sampler[int]
            if self.context.distributed:
                sampler = DistributedSampler(self.train_data, seed=self.config.seed)
                sampler.set_epoch(epoch)
            else:
                generator = torch.Generator().manual_seed(self.config.seed * 1000 + epoch)
                sampler = RandomSampler(self.train_data, generator=generator)
            loader = DataLoader(
                self.train_data,
                batch_size=self.config.batch_size,
                sampler=sampler,
                num_workers=self.config.workers,
                drop_last=True,
                pin_memory=self.context.device.type == "cuda",
            )
            yield from loader
            epoch += 1

    def step(self, batch: Batch) -> dict[str, float]:
        """One optimisation step at the scheduled learning rate; returns the loss."""
        self.current_lr = self.config.lr * self.lr_factor()
        for group in self.optimizer.param_groups:
            group["lr"] = self.current_lr
        images, labels = batch
        images = images.to(self.context.device, non_blocking=True)
        labels = labels.to(self.context.device, non_blocking=True)
        if self.config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(
            self.context.device.type, torch.bfloat16, enabled=self.config.precision == "bf16"
        )
        with autocast:
            logits = self.network(images)
        # Loss in float32: bf16 logits would round the small probabilities of rare classes.
        logits = F.interpolate(
            logits.float(),
            size=labels.shape[-2:],
            mode="bilinear",
            align_corners=bool(self.module.align_corners),
        )
        loss = self.criterion(logits, labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss became {loss.item()} at iteration {self.iteration}; lower lr"
            )
        self.optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        self.optimizer.step()
        return {"loss": float(loss.item())}

    def train(self) -> None:
        """Train until the schedule is done, calling the hooks."""
        self.network.train()
        self.run(self.batches(), self.step)
