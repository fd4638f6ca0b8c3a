"""Hooks of supervised training (:class:`training.trainer.Trainer`): logging, periodic
validation, checkpoints. The loop (:mod:`training.loop`) calls them in order."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import torch
from tqdm import tqdm

from anomaly_seg_ros.networks.checkpoint import save_checkpoint
from training.loop import Hook
from training.seg_eval import evaluate_network
from training.trainer import Trainer

LOGGER = logging.getLogger(__name__)


class LogHook(Hook[Trainer]):
    """tqdm progress on rank 0, and a JSON line per ``every`` steps in ``log.jsonl``."""

    def __init__(self, every: int, show_progress: bool = True) -> None:
        self.every = every
        self.show_progress = show_progress
        self.bar: tqdm[Any] | None = None
        self.losses: list[float] = []

    def before_train(self, trainer: Trainer) -> None:
        if trainer.context.is_main and self.show_progress:
            self.bar = tqdm(
                total=trainer.config.iterations,
                initial=trainer.iteration,
                desc="train",
                mininterval=5.0,
            )

    def after_step(self, trainer: Trainer) -> None:
        self.losses.append(trainer.last_loss)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{trainer.last_loss:.3f}", refresh=False)
        if trainer.iteration % self.every == 0 and trainer.context.is_main:
            record = {
                "iteration": trainer.iteration,
                "loss": sum(self.losses) / len(self.losses),
                "lr": trainer.current_lr,
                "elapsed_s": round(trainer.elapsed, 1),
                "progress": round(trainer.progress, 4),
            }
            self.losses.clear()
            LOGGER.info("%s", record)
            with (trainer.out_dir / "log.jsonl").open("a") as log:
                log.write(json.dumps(record) + "\n")

    def after_train(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()


class EvalHook(Hook[Trainer]):
    """Validation mIoU every ``every`` steps and at the end (all ranks take a share)."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.history: list[dict[str, Any]] = []

    def before_train(self, trainer: Trainer) -> None:
        # A resumed run keeps the history of the evaluations before its checkpoint.
        path = trainer.out_dir / "val_metrics.json"
        if trainer.iteration > 0 and path.is_file():
            earlier = json.loads(path.read_text())
            self.history = [row for row in earlier if row["iteration"] <= trainer.iteration]

    def _evaluate(self, trainer: Trainer) -> None:
        if trainer.val_frames is None:
            return
        started = time.monotonic()
        metrics = evaluate_network(
            trainer.network, trainer.val_frames, trainer.context, trainer.config.val_limit
        )
        trainer.val_metrics = metrics
        if trainer.context.is_main:
            record = {"iteration": trainer.iteration, **metrics.summary()}
            self.history.append(record)
            LOGGER.info(
                "val @%d: mIoU %.4f (present classes %.4f), %.0f s",
                trainer.iteration,
                metrics.miou,
                metrics.miou_present,
                time.monotonic() - started,
            )
            (trainer.out_dir / "val_metrics.json").write_text(json.dumps(self.history, indent=2))

    def after_step(self, trainer: Trainer) -> None:
        if trainer.iteration % self.every == 0 and not trainer.finished:
            self._evaluate(trainer)

    def after_train(self, trainer: Trainer) -> None:
        self._evaluate(trainer)


class CheckpointHook(Hook[Trainer]):
    """Resumable checkpoints every ``every`` steps and at the end (rank 0 writes).

    ``checkpoint.pt`` is the package checkpoint format (weights, classes, architecture),
    loadable by :func:`anomaly_seg_ros.networks.checkpoint.load_checkpoint`;
    ``train_state.pt`` holds what resuming needs besides the weights.
    """

    def __init__(self, every: int) -> None:
        self.every = every

    def save(self, trainer: Trainer) -> None:
        if not trainer.context.is_main:
            return
        meta: dict[str, Any] = {
            "iteration": trainer.iteration,
            "config": trainer.config.to_dict(),
            "val_miou": None if trainer.val_metrics is None else trainer.val_metrics.miou,
        }
        save_checkpoint(trainer.checkpoint_path, trainer.module, trainer.class_names, **meta)
        state = {
            "iteration": trainer.iteration,
            "elapsed": trainer.elapsed,
            "optimizer": trainer.optimizer.state_dict(),
        }
        partial = trainer.state_path.with_name(trainer.state_path.name + ".partial")
        torch.save(state, partial)
        partial.replace(trainer.state_path)

    def after_step(self, trainer: Trainer) -> None:
        # The last step is saved by after_train, with the final validation result.
        if trainer.iteration % self.every == 0 and not trainer.finished:
            self.save(trainer)

    def after_train(self, trainer: Trainer) -> None:
        self.save(trainer)
