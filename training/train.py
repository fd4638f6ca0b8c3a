"""Supervised training of a DeepLabv3+ on a Cityscapes-layout dataset.

Usage (single process, CPU or CUDA)::

    python -m training.train --config training/configs/demo.yaml [--resume] [key=value ...]

Distributed (DDP; gloo on CPU, NCCL on CUDA)::

    torchrun --nproc_per_node 2 -m training.train --config ... [key=value ...]

Cross-entropy (ignore 255) on logits upsampled to the label size, SGD or AdamW with
linear warm-up and poly decay. The decay runs over ``iterations`` or, when
``time_budget_minutes`` is set, over whichever of the two ends first, so a run on a busy
machine still finishes its schedule. Hooks log, validate and write resumable checkpoints.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from anomaly_seg_ros.datasets.cityscapes import CityscapesDataset
from anomaly_seg_ros.errors import AnomalySegError
from anomaly_seg_ros.networks.checkpoint import load_checkpoint
from training import distributed
from training.augment import IGNORE_INDEX, Augmentation
from training.build import build_network, build_optimizer
from training.config import TrainConfig, load_config
from training.hooks import CheckpointHook, EvalHook, Hook, LogHook, checkpoint_files
from training.seg_dataset import SegmentationDataset, class_weights
from training.seg_eval import ValMetrics

LOGGER = logging.getLogger("training.train")


class Trainer:
    """The training loop: a stream of batches, one step per batch, hooks around it.

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
        hooks: Sequence[Hook],
        criterion: nn.Module,
    ) -> None:
        self.config, self.context = config, context
        self.network, self.optimizer = network, optimizer
        self.train_data, self.val_frames = train_data, val_frames
        self.hooks, self.criterion = list(hooks), criterion
        self.class_names = train_data.frames.class_names[: config.num_classes]
        self.out_dir = Path(config.out_dir)
        self.checkpoint_path, self.state_path = checkpoint_files(self.out_dir)
        self.iteration, self.elapsed, self.last_loss = 0, 0.0, float("nan")
        self.current_lr = config.lr
        self.finished = False
        self.val_metrics: ValMetrics | None = None

    @property
    def module(self) -> nn.Module:
        """The network without its DDP wrapper."""
        return getattr(self.network, "module", self.network)

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
        return warmup * (1.0 - self.progress) ** self.config.poly_power

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless batches; every epoch re-draws the order and the augmentation."""
        epoch = self.iteration // max(1, len(self.train_data) // self.config.batch_size)
        while True:
            self.train_data.set_epoch(epoch)
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

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """One optimisation step; returns the loss."""
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
        loss.backward()
        self.optimizer.step()
        return float(loss.item())

    def run(self) -> None:
        """Train until the schedule is done, calling the hooks."""
        for hook in self.hooks:
            hook.before_train(self)
        self.network.train()
        started = time.monotonic() - self.elapsed
        stream = self.batches()
        while self.progress < 1.0:
            self.current_lr = self.config.lr * self.lr_factor()
            for group in self.optimizer.param_groups:
                group["lr"] = self.current_lr
            self.last_loss = self.step(*next(stream))
            self.iteration += 1
            self.elapsed = distributed.broadcast_float(time.monotonic() - started, self.context)
            self.finished = self.progress >= 1.0
            for hook in self.hooks:
                hook.after_step(self)
        self.finished = True
        for hook in self.hooks:
            hook.after_train(self)


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced."""

    checkpoint: Path
    iterations: int
    elapsed_s: float
    val: ValMetrics | None


def train(config: TrainConfig, resume: bool = False, show_progress: bool = True) -> TrainResult:
    """Run a training (this process's share when started by ``torchrun``)."""
    context = distributed.setup(config.device)
    try:
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed + context.rank)
        out_dir = Path(config.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        frames = CityscapesDataset(config.data_root, config.train_split, config.cities)
        augmentation = Augmentation(
            tuple(config.crop_size), tuple(config.scale_range), config.flip, config.color_jitter
        )
        train_data = SegmentationDataset(frames, augmentation, config.seed)
        val_frames = (
            CityscapesDataset(config.data_root, config.val_split) if config.val_split else None
        )
        network = build_network(config).to(context.device)
        if config.channels_last:
            network = network.to(memory_format=torch.channels_last)
        if context.distributed:
            network = nn.parallel.DistributedDataParallel(
                network, device_ids=[context.local_rank] if context.device.type == "cuda" else None
            )
        optimizer = build_optimizer(config, network)
        weights = class_weights(frames, config.num_classes) if config.class_balance else None
        criterion = nn.CrossEntropyLoss(
            weight=None if weights is None else weights.to(context.device),
            ignore_index=IGNORE_INDEX,
        )
        hooks = [
            LogHook(config.log_every, show_progress),
            EvalHook(config.val_every),
            CheckpointHook(config.checkpoint_every),
        ]
        trainer = Trainer(
            config, context, network, optimizer, train_data, val_frames, hooks, criterion
        )
        if resume:
            _resume(trainer)
        if context.is_main:
            (out_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
            LOGGER.info(
                "training %s on %d frames, %d process(es) on %s, from iteration %d",
                network.__class__.__name__,
                len(frames),
                context.world_size,
                context.device,
                trainer.iteration,
            )
        trainer.run()
        return TrainResult(
            trainer.checkpoint_path, trainer.iteration, trainer.elapsed, trainer.val_metrics
        )
    finally:
        distributed.cleanup()


def _resume(trainer: Trainer) -> None:
    """Load weights, optimizer state and progress from the run folder, if present."""
    if not trainer.checkpoint_path.is_file() or not trainer.state_path.is_file():
        LOGGER.info("nothing to resume in %s: starting from scratch", trainer.out_dir)
        return
    network, _ = load_checkpoint(trainer.checkpoint_path)
    trainer.module.load_state_dict(network.state_dict())
    state = torch.load(trainer.state_path, map_location=trainer.context.device, weights_only=True)
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.iteration, trainer.elapsed = int(state["iteration"]), float(state["elapsed"])
    LOGGER.info("resumed %s at iteration %d", trainer.out_dir, trainer.iteration)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train a DeepLabv3+ on a Cityscapes layout.")
    parser.add_argument("--config", type=Path, help="YAML training config")
    parser.add_argument("--resume", action="store_true", help="continue the run in out_dir")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    parser.add_argument("overrides", nargs="*", help="key=value settings (YAML values)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config(args.config, args.overrides)
        result = train(config, resume=args.resume, show_progress=not args.no_progress)
    except AnomalySegError as error:
        LOGGER.error("%s", error)
        return 1
    summary = {
        "checkpoint": str(result.checkpoint),
        "iterations": result.iterations,
        "elapsed_s": round(result.elapsed_s, 1),
        "val": None if result.val is None else result.val.summary(),
    }
    LOGGER.info("done: %s", json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
