"""Head-only anomaly fine-tuning (Zhang et al. 2023): ``L = L_id + gamma * L_ood``.

The backbone and every BatchNorm stay frozen in eval mode; only the final 1×1 classifier
(``network.final_conv``) learns by default; ``train_part`` chooses the classification
block after feature fusion or the whole decoder instead (their BatchNorm statistics still
stay frozen). AdamW, lr 1e-5, poly decay 0.9, 20 epochs by default; mixed precision on
CUDA. The steps run in the package's one training loop (:mod:`training.loop`); after every
epoch a hook evaluates validation mIoU and anomaly AP / AUROC / FPR95 and writes a
resumable state file. At the end: the fine-tuned checkpoint, the ONNX model with the
anomaly head, and recalibrated SML statistics.

Command line: YAML file → ``key=value`` overrides → frozen config (same scheme as
``training/train.py``, see :mod:`training.config`); nested settings take dotted keys,
``null`` switches an OoD source off::

    python -m training.finetune training/configs/finetune.yaml out_dir=output/ft loss.k=3
    python -m training.finetune cfg.yaml mix=null mgu.probability=0.2     # MGU only
    torchrun --nproc_per_node=4 -m training.finetune cfg.yaml             # several GPUs

Top-level keys: the :class:`RunSettings` fields (checkpoint and data paths) plus every
:class:`~training.finetune_config.FinetuneConfig` field.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Sampler
from tqdm import tqdm

from anomaly_seg_ros.config_files import apply_overrides, build_dataclass, read_yaml_mapping
from anomaly_seg_ros.errors import AnomalySegError, ConfigError
from anomaly_seg_ros.networks.checkpoint import CheckpointMeta
from training import distributed
from training.anomalymix import AnomalyMix
from training.coco_subset import ObjectBank
from training.finetune_config import FinetuneConfig, FinetuneResult
from training.finetune_data import FrameSource, OodTrainingSet, input_bounds
from training.finetune_eval import EvalResult, EvalSettings, evaluate
from training.finetune_outputs import write_outputs
from training.finetune_setup import (
    load_state,
    poly_schedule,
    save_state,
    set_finetune_mode,
    trainable_modules,
)
from training.loop import Hook, Loop
from training.losses import anomaly_loss
from training.mgu import mgu_ood_batch

LOGGER = logging.getLogger(__name__)
STATE_FILE = "finetune_state.pt"

#: One fine-tuning batch: images (N, 3, H, W) float32, labels (N, H, W) int64.
Batch = tuple[torch.Tensor, torch.Tensor]


def _summary(record: dict[str, Any], result: EvalResult) -> None:
    record["miou"] = result.miou
    record["miou_present"] = result.miou_present
    for name, metrics in result.anomaly.items():
        record[f"{name}/ap"] = metrics.average_precision
        record[f"{name}/auroc"] = metrics.auroc
        record[f"{name}/fpr95"] = metrics.fpr_at_95_tpr


@dataclass
class _Run:
    """What the step function, the batch stream and the epoch hook share."""

    model: nn.Module  # the DDP wrapper of ``network`` under torchrun, else ``network``
    network: nn.Module
    modules: list[nn.Module]
    dataset: OodTrainingSet
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    config: FinetuneConfig
    device: torch.device
    bounds: tuple[torch.Tensor, torch.Tensor]
    steps: int  # optimisation steps per epoch
    rank: int
    world: int
    generator: torch.Generator  # MGU's, re-seeded every epoch

    def batches(self, start_epoch: int) -> Iterator[Batch]:
        """``steps`` batches per epoch from ``start_epoch`` on; each epoch re-draws the
        order and the samples from (seed, epoch), so a resumed run draws what an
        uninterrupted one would."""
        config = self.config
        for epoch in itertools.count(start_epoch):
            self.dataset.set_epoch(epoch)
            sampler: Sampler[int]
            if self.world > 1:
                sampler = DistributedSampler(
                    self.dataset, self.world, self.rank, shuffle=True, seed=config.seed
                )
                sampler.set_epoch(epoch)
            else:
                sampler = RandomSampler(
                    self.dataset, generator=torch.Generator().manual_seed(config.seed + epoch)
                )
            loader = DataLoader(
                self.dataset, config.batch_size, sampler=sampler, num_workers=config.workers,
                drop_last=True, pin_memory=self.device.type == "cuda",
            )  # fmt: skip
            set_finetune_mode(self.network, self.modules)
            self.generator = torch.Generator().manual_seed(config.seed * 1000 + epoch)
            yield from itertools.islice(loader, self.steps)

    def step(self, batch: Batch) -> dict[str, float]:
        """One optimisation step; returns the loss and its two terms."""
        config, device = self.config, self.device
        images, labels = batch[0].to(device, non_blocking=True), batch[1].to(device)
        if config.mgu is not None:
            images, labels = mgu_ood_batch(
                self.network, images, labels, config.mgu, self.generator, self.bounds
            )
        with torch.autocast(device.type, dtype=torch.float16, enabled=self.scaler.is_enabled()):
            logits = self.model(images)
        align_corners = bool(self.network.align_corners)
        loss, parts = anomaly_loss(logits.float(), labels, config.loss, align_corners)
        self.optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(self.scaler.scale(loss))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.step()
        return {"loss": float(loss.detach()), "id": parts["id"], "ood": parts["ood"]}


class EpochHook(Hook[Loop[Batch]]):
    """Per epoch: a progress bar, the mean loss terms, then (rank 0) validation, the
    history and the resumable state file.

    :param run: the shared run state.
    :param evaluate_epoch: evaluates the network, or None without validation frames.
    :param state_path: where the state file goes.
    :param history: records of the epochs before (a resumed run), appended to.
    """

    def __init__(
        self,
        run: _Run,
        evaluate_epoch: Any,
        state_path: Path,
        history: list[dict[str, Any]],
    ) -> None:
        self.run, self.evaluate_epoch = run, evaluate_epoch
        self.state_path, self.history = state_path, history
        self.totals: dict[str, float] = {}
        self.started = 0.0
        self.bar: tqdm[Any] | None = None

    def _open_epoch(self, loop: Loop[Batch]) -> None:
        epoch, epochs = loop.iteration // self.run.steps, self.run.config.epochs
        self.totals = {"loss": 0.0, "id": 0.0, "ood": 0.0}
        self.started = time.perf_counter()
        self.bar = tqdm(
            total=self.run.steps,
            desc=f"epoch {epoch + 1}/{epochs}",
            disable=self.run.rank != 0 or not self.run.config.progress,
        )

    def before_train(self, loop: Loop[Batch]) -> None:
        self._open_epoch(loop)

    def after_step(self, loop: Loop[Batch]) -> None:
        for key in self.totals:
            self.totals[key] += loop.last[key]
        index = (loop.iteration - 1) % self.run.steps
        assert self.bar is not None  # opened before the epoch's first step
        self.bar.update(1)
        self.bar.set_postfix(
            loss=f"{self.totals['loss'] / (index + 1):.4f}", ood=f"{loop.last['ood']:.4f}"
        )
        if loop.iteration % self.run.steps == 0:
            self._close_epoch(loop)
            if not loop.finished:
                self._open_epoch(loop)

    def _close_epoch(self, loop: Loop[Batch]) -> None:
        assert self.bar is not None
        self.bar.close()
        steps, epoch = self.run.steps, loop.iteration // self.run.steps
        record: dict[str, Any] = {
            "epoch": epoch,
            "seconds": time.perf_counter() - self.started,
            "steps": steps,
        }
        record.update({key: value / steps for key, value in self.totals.items()})
        record["lr"] = self.run.schedule.get_last_lr()[0]
        if self.run.rank != 0:
            return
        if self.evaluate_epoch is not None:
            _summary(record, self.evaluate_epoch())
        self.history.append(record)
        objects = {
            "optimizer": self.run.optimizer,
            "schedule": self.run.schedule,
            "scaler": self.run.scaler,
        }
        save_state(self.state_path, self.run.network, objects, epoch, self.history)
        LOGGER.info("epoch %d: %s", epoch, record)


def finetune(
    network: nn.Module,
    meta: CheckpointMeta,
    config: FinetuneConfig,
    train_frames: FrameSource,
    out_dir: str | Path,
    bank: ObjectBank | None = None,
    val_frames: FrameSource | None = None,
    anomaly_frames: FrameSource | None = None,
) -> FinetuneResult:
    """Fine-tune ``network`` in place and write the results to ``out_dir``.

    A ``finetune_state.pt`` left in ``out_dir`` by an interrupted run is resumed.

    :param network: a network of :mod:`anomaly_seg_ros.networks` (``final_conv``).
    :param meta: its checkpoint metadata (classes, normalization).
    :param train_frames: training frames (train-ID labels).
    :param bank: AnomalyMix objects (needed when ``config.mix`` is set).
    :param val_frames: ID validation frames for mIoU, or None.
    :param anomaly_frames: anomaly validation frames (0/1/255 labels), or None.
    :raises ConfigError: AnomalyMix without a bank, or fewer frames than one batch.
    """
    import torch.distributed as dist

    if config.mix is not None and bank is None:
        raise ConfigError("AnomalyMix is enabled but no object bank was given (--bank)")
    context = distributed.setup()
    rank, world, device = context.rank, context.world_size, context.device
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    network.to(device)
    modules = trainable_modules(network, config.train_part)
    mix = AnomalyMix(bank, config.mix) if config.mix is not None and bank is not None else None
    dataset = OodTrainingSet(train_frames, mix, config.sample, meta.mean, meta.std, config.seed)
    steps = len(dataset) // (config.batch_size * world)
    steps = min(steps, config.steps_per_epoch or steps)
    if steps < 1:
        raise ConfigError(f"{len(dataset)} frames are fewer than one batch of {config.batch_size}")
    optimizer = torch.optim.AdamW(
        [p for p in network.parameters() if p.requires_grad],
        config.lr,
        weight_decay=config.weight_decay,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, poly_schedule(config.epochs * steps, config.poly_power)
    )
    scaler = torch.amp.GradScaler("cuda", enabled=config.amp and device.type == "cuda")
    objects = {"optimizer": optimizer, "schedule": schedule, "scaler": scaler}
    start, history = load_state(out / STATE_FILE, network, objects)
    model = network
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(network, device_ids=ids)
    settings = EvalSettings(meta.mean, meta.std, config.eval_scale, config.scores)
    low, high = input_bounds(meta.mean, meta.std)
    bounds = (low.to(device), high.to(device))

    def evaluate_epoch() -> EvalResult:
        return evaluate(network, settings, meta.class_names, val_frames, anomaly_frames, device)

    validates = val_frames is not None or anomaly_frames is not None
    if start == 0 and rank == 0 and validates:
        record: dict[str, Any] = {"epoch": 0}
        _summary(record, evaluate_epoch())
        history.append(record)
        LOGGER.info("before fine-tuning: %s", record)
    run = _Run(
        model, network, modules, dataset, optimizer, schedule, scaler, config, device, bounds,
        steps, rank, world, torch.Generator(),
    )  # fmt: skip
    hook = EpochHook(run, evaluate_epoch if validates else None, out / STATE_FILE, history)
    loop: Loop[Batch] = Loop(config.epochs * steps, [hook], iteration=start * steps)
    if start < config.epochs:
        loop.run(run.batches(start), run.step)
    result = FinetuneResult(out / "model.pt", history)
    if rank == 0:
        write_outputs(network, meta, config, train_frames, out, result)
    if world > 1:
        dist.barrier()
    return result


@dataclass(frozen=True)
class RunSettings:
    """Where the network and the data are.

    :param checkpoint: base model: our checkpoint or a VainF / NVIDIA / PEBAL file as
        downloaded (``anomaly_seg_ros.networks.importers``).
    :param data_root: Cityscapes-layout folder (``leftImg8bit/``, ``gtFine/``).
    :param train_split: split fine-tuned on.
    :param val_split: split for the per-epoch mIoU, or None.
    :param val_limit: evaluate on the first N validation frames only.
    :param anomaly_root: anomaly validation set (Fishyscapes / Road Anomaly / SMIYC layout).
    :param bank: AnomalyMix object bank (``python -m training.coco_subset``).
    :param out_dir: where the state, checkpoint, ONNX and SML statistics go.
    """

    checkpoint: str = ""
    data_root: str = ""
    train_split: str = "train"
    val_split: str | None = "val"
    val_limit: int | None = None
    anomaly_root: str | None = None
    bank: str | None = None
    out_dir: str = "output/finetune"


def load_settings(path: str | None, overrides: list[str]) -> tuple[RunSettings, FinetuneConfig]:
    """Read the YAML file, apply ``key=value`` overrides, split and freeze.

    :raises ConfigError: unreadable file, malformed override, unknown or invalid setting.
    """
    values = read_yaml_mapping(path, "fine-tuning config") if path is not None else {}
    values = apply_overrides(values, overrides)
    run_keys = {item.name for item in fields(RunSettings)}
    run = build_dataclass(
        RunSettings, {k: v for k, v in values.items() if k in run_keys}, "fine-tuning"
    )
    config = build_dataclass(
        FinetuneConfig, {k: v for k, v in values.items() if k not in run_keys}, "fine-tuning"
    )
    if not run.checkpoint or not run.data_root:
        raise ConfigError(
            "checkpoint and data_root are required (in the YAML file or as key=value)"
        )
    return run, config


def run(settings: RunSettings, config: FinetuneConfig) -> int:
    """Load the model and the data named in ``settings`` and fine-tune."""
    from anomaly_seg_ros.datasets.anomaly import AnomalyDataset
    from anomaly_seg_ros.datasets.cityscapes import CityscapesDataset
    from anomaly_seg_ros.networks.importers import import_checkpoint
    from training.finetune_data import IndexedFrames

    network, meta = import_checkpoint(settings.checkpoint)
    train = IndexedFrames(CityscapesDataset(settings.data_root, settings.train_split))
    val = None
    if settings.val_split:
        dataset = CityscapesDataset(settings.data_root, settings.val_split)
        val = IndexedFrames(dataset, settings.val_limit)
    anomaly = AnomalyDataset(Path(settings.anomaly_root)) if settings.anomaly_root else None
    bank = ObjectBank(settings.bank) if settings.bank else None
    try:
        result = finetune(network, meta, config, train, settings.out_dir, bank, val, anomaly)
    finally:
        distributed.cleanup()  # leave torchrun's process group, if one was joined
    LOGGER.info(
        "fine-tuned model: %s, ONNX: %s, SML: %s", result.checkpoint, result.onnx, result.sml_stats
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m training.finetune [config.yaml] [key=value ...]``."""
    parser = argparse.ArgumentParser(description="Head-only anomaly fine-tuning")
    parser.add_argument("config", nargs="?", help="YAML settings file")
    parser.add_argument("overrides", nargs="*", help="key=value (dotted keys for nested)")
    args = parser.parse_args(argv)
    if args.config and "=" in args.config:  # no file, only overrides
        args.overrides.insert(0, args.config)
        args.config = None
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(*load_settings(args.config, args.overrides))
    except AnomalySegError as error:
        LOGGER.error("%s", error)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
