"""Head-only anomaly fine-tuning (Zhang et al. 2023): ``L = L_id + gamma * L_ood``.

The backbone and every BatchNorm stay frozen in eval mode; only the final 1×1 classifier
(``network.final_conv``) learns by default; ``train_part`` chooses the classification
block after feature fusion or the whole decoder instead (their BatchNorm statistics still
stay frozen). AdamW, lr 1e-5, poly decay 0.9, 20 epochs by
default; mixed precision on CUDA. After every epoch: validation mIoU and anomaly
AP / AUROC / FPR95, then a resumable state file. At the end: the fine-tuned checkpoint,
the ONNX model with the anomaly head, and recalibrated SML statistics.

Command line (``torchrun --nproc_per_node=N -m training.finetune ...`` for several GPUs)
lives in :mod:`training.finetune_cli`; the library entry point is :func:`finetune`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.networks.checkpoint import CheckpointMeta
from training import distributed
from training.anomalymix import AnomalyMix, AnomalyMixConfig
from training.coco_subset import ObjectBank
from training.finetune_data import FrameSource, OodTrainingSet, SampleConfig, input_bounds
from training.finetune_eval import EvalSettings, evaluate
from training.finetune_outputs import write_outputs
from training.finetune_setup import (
    TRAIN_PARTS,
    load_state,
    poly_schedule,
    save_state,
    set_finetune_mode,
    trainable_modules,
)
from training.losses import AnomalyLossConfig, anomaly_loss
from training.mgu import MguConfig, mgu_ood_batch

LOGGER = logging.getLogger(__name__)
STATE_FILE = "finetune_state.pt"


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything a fine-tuning run needs besides the network and the data.

    :param epochs: passes over the training frames (paper: 20).
    :param batch_size: samples per step (per process under torchrun).
    :param lr: AdamW learning rate (paper: 1e-5).
    :param weight_decay: AdamW weight decay.
    :param poly_power: poly decay exponent (paper: 0.9).
    :param train_part: what trains: ``final_conv`` (the paper's reading), ``block`` (the
        classification block holding it: 3×3 conv + BN + ReLU + 1×1) or ``decoder``.
    :param loss: the anomaly loss.
    :param sample: training-sample geometry.
    :param mix: AnomalyMix settings, or None without pasted objects.
    :param mgu: Masked Gradient Update settings, or None.
    :param eval_scale: validation frames are resized by this factor.
    :param scores: anomaly scores evaluated each epoch.
    :param steps_per_epoch: cap on steps per epoch (short schedules); None = all frames.
    :param amp: float16 autocast + gradient scaling when running on CUDA.
    :param workers: DataLoader worker processes.
    :param seed: seed of sampling, AnomalyMix and MGU.
    :param export_size: (height, width) of the exported ONNX input; None skips the export.
    :param progress: show a tqdm bar.
    """

    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-5
    weight_decay: float = 0.01
    poly_power: float = 0.9
    train_part: str = "final_conv"
    loss: AnomalyLossConfig = field(default_factory=AnomalyLossConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    mix: AnomalyMixConfig | None = field(default_factory=AnomalyMixConfig)
    mgu: MguConfig | None = None
    eval_scale: float = 1.0
    scores: tuple[str, ...] = ("max_logit", "energy", "max_min_logit")
    steps_per_epoch: int | None = None
    amp: bool = True
    workers: int = 2
    seed: int = 0
    export_size: tuple[int, int] | None = (512, 1024)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("epochs, batch_size and lr must be positive")
        if self.train_part not in TRAIN_PARTS:
            raise ConfigError(
                f"train_part {self.train_part!r}: choose one of {', '.join(TRAIN_PARTS)}"
            )
        if self.mix is None and self.mgu is None:
            raise ConfigError("no OoD source: enable AnomalyMix (mix) and/or MGU (mgu)")


@dataclass
class FinetuneResult:
    """Paths written and the per-epoch history."""

    checkpoint: Path
    history: list[dict[str, Any]]
    onnx: Path | None = None
    sml_stats: Path | None = None


def _summary(record: dict[str, Any], result: Any) -> None:
    record["miou"] = result.miou
    record["miou_present"] = result.miou_present
    for name, metrics in result.anomaly.items():
        record[f"{name}/ap"] = metrics.average_precision
        record[f"{name}/auroc"] = metrics.auroc
        record[f"{name}/fpr95"] = metrics.fpr_at_95_tpr


@dataclass
class _Step:
    """What one optimisation step needs (``model`` may be the DDP wrapper of ``network``)."""

    model: nn.Module
    network: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    config: FinetuneConfig
    device: torch.device
    bounds: tuple[torch.Tensor, ...]


def _train_steps(
    step: _Step, loader: Any, steps: int, generator: torch.Generator, bar: Any
) -> dict[str, float]:
    """Run ``steps`` optimisation steps; return the summed loss terms."""
    config, device = step.config, step.device
    use_amp = step.scaler.is_enabled()
    totals = {"loss": 0.0, "id": 0.0, "ood": 0.0}
    for index, (images, labels) in enumerate(loader):
        if index >= steps:
            break
        images, labels = images.to(device, non_blocking=True), labels.to(device)
        if config.mgu is not None:
            images, labels = mgu_ood_batch(
                step.network, images, labels, config.mgu, generator, step.bounds
            )
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            logits = step.model(images)
        loss, parts = anomaly_loss(logits.float(), labels, config.loss, step.network.align_corners)
        step.optimizer.zero_grad(set_to_none=True)
        step.scaler.scale(loss).backward()
        step.scaler.step(step.optimizer)
        step.scaler.update()
        step.schedule.step()
        totals["loss"] += float(loss.detach())
        totals["id"] += parts["id"]
        totals["ood"] += parts["ood"]
        bar.update(1)
        bar.set_postfix(loss=f"{totals['loss'] / (index + 1):.4f}", ood=f"{parts['ood']:.4f}")
    bar.close()
    return totals


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
    from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

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
    bounds = tuple(bound.to(device) for bound in input_bounds(meta.mean, meta.std))
    if start == 0 and rank == 0 and (val_frames is not None or anomaly_frames is not None):
        record: dict[str, Any] = {"epoch": 0}
        _summary(
            record,
            evaluate(network, settings, meta.class_names, val_frames, anomaly_frames, device),
        )
        history.append(record)
        LOGGER.info("before fine-tuning: %s", record)
    for epoch in range(start, config.epochs):
        dataset.set_epoch(epoch)
        if world > 1:
            sampler: Any = DistributedSampler(dataset, world, rank, shuffle=True, seed=config.seed)
            sampler.set_epoch(epoch)
        else:
            sampler = RandomSampler(
                dataset, generator=torch.Generator().manual_seed(config.seed + epoch)
            )
        loader = DataLoader(
            dataset, config.batch_size, sampler=sampler, num_workers=config.workers,
            drop_last=True, pin_memory=device.type == "cuda",
        )  # fmt: skip
        set_finetune_mode(network, modules)
        started = time.perf_counter()
        totals = _train_steps(
            _Step(model, network, optimizer, schedule, scaler, config, device, bounds),
            loader,
            steps,
            torch.Generator().manual_seed(config.seed * 1000 + epoch),
            tqdm(
                total=steps,
                desc=f"epoch {epoch + 1}/{config.epochs}",
                disable=rank != 0 or not config.progress,
            ),
        )
        record = {"epoch": epoch + 1, "seconds": time.perf_counter() - started, "steps": steps}
        record.update({key: value / steps for key, value in totals.items()})
        record["lr"] = schedule.get_last_lr()[0]
        if rank == 0:
            if val_frames is not None or anomaly_frames is not None:
                _summary(
                    record,
                    evaluate(
                        network, settings, meta.class_names, val_frames, anomaly_frames, device
                    ),
                )
            history.append(record)
            save_state(out / STATE_FILE, network, objects, epoch + 1, history)
            LOGGER.info("epoch %d: %s", epoch + 1, record)
    result = FinetuneResult(out / "model.pt", history)
    if rank == 0:
        write_outputs(network, meta, config, train_frames, out, result)
    if world > 1:
        dist.barrier()
    return result


if __name__ == "__main__":
    from training.finetune_cli import main

    raise SystemExit(main())
