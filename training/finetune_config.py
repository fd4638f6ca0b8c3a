"""Settings and result of anomaly fine-tuning (:func:`training.finetune.finetune`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anomaly_seg_ros.errors import ConfigError
from training.anomalymix import AnomalyMixConfig
from training.finetune_data import SampleConfig
from training.finetune_setup import TRAIN_PARTS
from training.losses import AnomalyLossConfig
from training.mgu import MguConfig


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
