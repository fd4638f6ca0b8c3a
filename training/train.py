"""Supervised training of a DeepLabv3+ on a Cityscapes-layout dataset.

Usage (single process, CPU or CUDA)::

    python -m training.train --config training/configs/demo.yaml [--resume] [key=value ...]

Distributed (DDP; gloo on CPU, NCCL on CUDA)::

    torchrun --nproc_per_node 2 -m training.train --config ... [key=value ...]

The loop is :class:`training.trainer.Trainer` (the package's one training loop,
:mod:`training.loop`, with a cross-entropy step); hooks log, validate and write resumable
checkpoints.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import nn

from anomaly_seg_ros.datasets.cityscapes import CityscapesDataset
from anomaly_seg_ros.errors import AnomalySegError
from anomaly_seg_ros.networks.checkpoint import load_checkpoint
from training import distributed
from training.augment import IGNORE_INDEX, Augmentation
from training.build import build_network, build_optimizer
from training.config import TrainConfig, load_config
from training.hooks import CheckpointHook, EvalHook, LogHook
from training.seg_dataset import SegmentationDataset, class_weights
from training.seg_eval import ValMetrics
from training.trainer import Trainer

LOGGER = logging.getLogger("training.train")


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
            config.crop_size, config.scale_range, config.flip, config.color_jitter
        )
        train_data = SegmentationDataset(frames, augmentation, config.seed)
        val_frames = (
            CityscapesDataset(config.data_root, config.val_split) if config.val_split else None
        )
        network = build_network(config).to(context.device)
        if config.channels_last:
            # torch accepts memory_format in Module.to; its stubs do not list it.
            network = network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
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
        trainer.train()
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
