"""Supervised training: a short run lowers the loss, resumes, and runs as 2-process DDP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from anomaly_seg_ros.networks.checkpoint import load_checkpoint
from demo.synthetic.generate import generate
from training.config import load_config
from training.train import train

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mini_cityscapes(tmp_path_factory):
    out = tmp_path_factory.mktemp("mini")
    generate(
        out, train=4, val=2, anomaly=0, ood_bank=0, seed=1, height=64, width=128, progress=False
    )
    return out / "cityscapes"


def _overrides(data_root, out_dir, **extra):
    settings = {
        "data_root": str(data_root),
        "out_dir": str(out_dir),
        "width_mult": 0.25,
        "crop_size": "[64, 128]",
        "scale_range": "[1.0, 1.0]",
        "flip": "false",
        "color_jitter": 0.0,
        "batch_size": 4,
        "workers": 0,
        "lr": 0.01,
        "warmup_iterations": 1,
        "iterations": 12,
        "log_every": 4,
        "val_every": 100,
        "checkpoint_every": 100,
        "threads": 1,
        "class_balance": "true",
        **extra,
    }
    return [f"{key}={value}" for key, value in settings.items()]


def test_a_few_iterations_lower_the_loss(mini_cityscapes, tmp_path):
    config = load_config(None, _overrides(mini_cityscapes, tmp_path / "run"))
    result = train(config, show_progress=False)
    records = [json.loads(line) for line in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    assert [record["iteration"] for record in records] == [4, 8, 12]
    assert records[-1]["loss"] < 0.8 * records[0]["loss"]
    assert result.iterations == 12 and result.val is not None and result.val.frames == 2
    _, meta = load_checkpoint(result.checkpoint)
    assert meta.architecture["width_mult"] == 0.25 and meta.class_names[0] == "road"
    assert meta.meta["iteration"] == 12


def test_resume_continues_from_the_saved_iteration(mini_cityscapes, tmp_path):
    # Also the fast CPU path of the demo model: bf16 autocast, channels-last layout.
    out = tmp_path / "run"
    fast = {"precision": "bf16", "channels_last": "true"}
    train(
        load_config(None, _overrides(mini_cityscapes, out, iterations=4, **fast)),
        show_progress=False,
    )
    config = load_config(None, _overrides(mini_cityscapes, out, iterations=6, **fast))
    result = train(config, resume=True, show_progress=False)
    assert result.iterations == 6
    _, meta = load_checkpoint(result.checkpoint)
    assert meta.meta["iteration"] == 6
    history = json.loads((out / "val_metrics.json").read_text())
    assert [row["iteration"] for row in history] == [4, 6]


def test_two_process_ddp_on_cpu(mini_cityscapes, tmp_path):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "training.train",
        "--no-progress",
        *_overrides(mini_cityscapes, tmp_path / "ddp", iterations=3, batch_size=2, log_every=1),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "2 process(es)" in completed.stderr
    records = (tmp_path / "ddp/log.jsonl").read_text().splitlines()
    assert len(records) == 3  # only rank 0 logs
    _, meta = load_checkpoint(tmp_path / "ddp/checkpoint.pt")
    assert meta.meta["iteration"] == 3
