"""Command line of anomaly fine-tuning: YAML file → ``key=value`` overrides → frozen config.

Same scheme as ``training/train.py`` (see :mod:`training.config`); nested settings take
dotted keys, ``null`` switches an OoD source off::

    python -m training.finetune training/configs/finetune.yaml out_dir=output/ft loss.k=3
    python -m training.finetune cfg.yaml mix=null mgu.probability=0.2     # MGU only
    torchrun --nproc_per_node=4 -m training.finetune cfg.yaml             # several GPUs

Top-level keys: the :class:`RunSettings` fields (checkpoint and data paths) plus every
:class:`~training.finetune.FinetuneConfig` field.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, fields
from pathlib import Path

from anomaly_seg_ros.config_files import apply_overrides, build_dataclass, read_yaml_mapping
from anomaly_seg_ros.errors import AnomalySegError, ConfigError
from training import distributed
from training.finetune import FinetuneConfig, finetune

LOGGER = logging.getLogger(__name__)


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
    from training.coco_subset import ObjectBank
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
