"""Training configuration: YAML file -> ``key=value`` command-line overrides -> frozen.

One system only: every setting is a field of :class:`TrainConfig`; a YAML file sets any
of them, overrides (``lr=0.001 crop_size=[256,384]``, values parsed as YAML) win, and the
result is validated and frozen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anomaly_seg_ros.config_files import load_dataclass
from anomaly_seg_ros.errors import ConfigError

OPTIMIZERS = ("sgd", "adamw")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a supervised training run needs (see docs/training.md)."""

    data_root: str = "output/synthetic/cityscapes"
    train_split: str = "train"
    val_split: str = "val"
    cities: tuple[str, ...] | None = None
    out_dir: str = "output/train"
    # Network.
    backbone: str = "mobilenetv2"
    width_mult: float = 0.5
    output_stride: int = 16
    num_classes: int = 19
    init_checkpoint: str | None = None
    # Data and augmentation.
    crop_size: tuple[int, int] = (256, 384)
    scale_range: tuple[float, float] = (0.75, 1.5)
    flip: bool = True
    color_jitter: float = 0.3
    batch_size: int = 8
    workers: int = 2
    class_balance: bool = False
    # Optimisation.
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    poly_power: float = 0.9
    warmup_iterations: int = 50
    iterations: int = 2000
    time_budget_minutes: float | None = None
    # bf16 autocast (2x faster on CPUs with AVX512-BF16) and NHWC memory layout.
    precision: str = "fp32"
    channels_last: bool = False
    # Hooks.
    log_every: int = 20
    val_every: int = 500
    val_limit: int | None = None
    checkpoint_every: int = 250
    # Run.
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.optimizer not in OPTIMIZERS:
            problems.append(
                f"optimizer {self.optimizer!r} unknown; valid: {', '.join(OPTIMIZERS)}"
            )
        if self.precision not in PRECISIONS:
            problems.append(
                f"precision {self.precision!r} unknown; valid: {', '.join(PRECISIONS)}"
            )
        if len(self.crop_size) != 2 or min(self.crop_size) < 32:
            problems.append(f"crop_size {self.crop_size} must be two sizes >= 32")
        if len(self.scale_range) != 2 or not 0 < self.scale_range[0] <= self.scale_range[1]:
            problems.append(f"scale_range {self.scale_range} must be 0 < min <= max")
        for name in ("batch_size", "iterations", "log_every", "val_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if self.lr <= 0 or self.weight_decay < 0 or self.workers < 0:
            problems.append("lr must be > 0, weight_decay and workers >= 0")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"device {self.device!r} must be auto, cpu or cuda")
        if problems:
            raise ConfigError("invalid training config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able values (tuples become lists)."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Build the frozen config from a YAML file and ``key=value`` overrides.

    :param path: YAML mapping of field names to values, or None for the defaults.
    :param overrides: ``key=value`` strings; values are parsed as YAML (``lr=1e-3``,
        ``crop_size=[256,512]``, ``init_checkpoint=null``).
    :raises ConfigError: unreadable file, unknown keys, malformed overrides, bad values.
    """
    return load_dataclass(TrainConfig, path, overrides, "training")
