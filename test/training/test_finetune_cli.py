"""The fine-tuning command line: settings parsing and one run on Cityscapes-layout files."""

import json

import cv2
import numpy as np
import pytest
import torch
import yaml

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.networks import create_network
from anomaly_seg_ros.networks.checkpoint import save_checkpoint
from training.finetune import load_settings, main

CLASSES_19 = [f"class_{index}" for index in range(19)]


def test_yaml_then_dotted_overrides(tmp_path):
    path = tmp_path / "ft.yaml"
    path.write_text(
        yaml.safe_dump(
            {"checkpoint": "m.pt", "data_root": "data", "epochs": 3, "loss": {"kind": "energy"},
             "mix": {"style": "histogram"}, "sample": {"crop_size": [64, 128]}}
        )
    )  # fmt: skip
    run, config = load_settings(str(path), ["loss.gamma=0.1", "mgu.max_steps=4", "mix=null"])
    assert run.checkpoint == "m.pt" and run.val_split == "val"
    assert config.epochs == 3 and config.loss.kind == "energy" and config.loss.gamma == 0.1
    assert config.loss.k == 5  # untouched nested defaults stay
    assert config.sample.crop_size == (64, 128)
    assert config.mix is None and config.mgu.max_steps == 4
    with pytest.raises(ConfigError, match="lr_max"):
        load_settings(str(path), ["lr_max=1"])
    with pytest.raises(ConfigError, match="topk_ovr"):
        load_settings(str(path), ["loss.kind=focal"])
    with pytest.raises(ConfigError, match="required"):
        load_settings(None, ["epochs=1"])


def _cityscapes(root, split: str, count: int) -> None:
    rng = np.random.default_rng(1)
    for index in range(count):
        images = root / "leftImg8bit" / split / "town"
        labels = root / "gtFine" / split / "town"
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        label_ids = np.full((64, 96), 7, np.uint8)  # road
        label_ids[:30] = 23  # sky
        image = np.where(label_ids[..., None] == 7, 90, 200).astype(np.uint8)
        image = np.clip(image + rng.integers(0, 20, (64, 96, 3)), 0, 255).astype(np.uint8)
        stem = f"town_{index:06d}_000019"
        cv2.imwrite(str(images / f"{stem}_leftImg8bit.png"), image)
        cv2.imwrite(str(labels / f"{stem}_gtFine_labelIds.png"), label_ids)


def test_cli_run_on_files(tmp_path, object_bank_dir):
    _cityscapes(tmp_path / "city", "train", 4)
    _cityscapes(tmp_path / "city", "val", 2)
    anomaly = tmp_path / "fishy"
    (anomaly / "original").mkdir(parents=True)
    (anomaly / "labels").mkdir()
    image = np.full((64, 96, 3), 90, np.uint8)
    image[20:40, 30:60] = (30, 30, 250)
    label = np.zeros((64, 96), np.uint8)
    label[20:40, 30:60] = 1
    cv2.imwrite(str(anomaly / "original" / "a.png"), image)
    cv2.imwrite(str(anomaly / "labels" / "a.png"), label)
    torch.manual_seed(0)
    network = create_network("mobilenetv2", num_classes=19, width_mult=0.25)
    save_checkpoint(tmp_path / "base.pt", network, CLASSES_19, source="test")
    out = tmp_path / "out"
    code = main(
        [
            f"checkpoint={tmp_path / 'base.pt'}", f"data_root={tmp_path / 'city'}",
            f"anomaly_root={anomaly}", f"bank={object_bank_dir}", f"out_dir={out}",
            "epochs=1", "batch_size=2", "workers=0", "progress=false", "export_size=null",
            "sample.crop_size=[48,64]", "mix.probability=1.0",
        ]
    )  # fmt: skip
    assert code == 0
    history = torch.load(out / "finetune_state.pt", weights_only=True)["history"]
    assert [record["epoch"] for record in history] == [0, 1]
    assert 0.0 <= history[-1]["max_logit/ap"] <= 1.0 and history[-1]["miou"] >= 0.0
    assert json.dumps(history)  # plain values, loggable
    assert (out / "model.pt").is_file()
    assert main([f"checkpoint={tmp_path / 'missing.pt'}", f"data_root={tmp_path}"]) == 1


def test_torchrun_two_processes_share_the_epoch(tmp_path, object_bank_dir):
    """A real torchrun launch on the CPU (gloo): each process takes half of the frames."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    _cityscapes(tmp_path / "city", "train", 8)
    _cityscapes(tmp_path / "city", "val", 2)
    torch.manual_seed(0)
    network = create_network("mobilenetv2", num_classes=19, width_mult=0.25)
    save_checkpoint(tmp_path / "base.pt", network, CLASSES_19, source="test")
    out = tmp_path / "out"
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "training.finetune",
        f"checkpoint={tmp_path / 'base.pt'}", f"data_root={tmp_path / 'city'}",
        f"bank={object_bank_dir}", f"out_dir={out}", "epochs=1", "batch_size=2",
        "workers=0", "progress=false", "export_size=null", "sample.crop_size=[48,64]",
        "mix.probability=1.0",
    ]  # fmt: skip
    run = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    history = torch.load(out / "finetune_state.pt", weights_only=True)["history"]
    assert [record["epoch"] for record in history] == [0, 1]
    assert history[1]["steps"] == 8 // (2 * 2)  # 8 frames, batch 2 per process, 2 processes
    assert (out / "model.pt").is_file()
