"""NVIDIA DeepWV3Plus (WideResNet38) and PEBAL's fine-tuned variant load as downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from vendor_layouts import constant_state_dict, nvidia_wrn38_layout

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.networks.checkpoint import read_torch_file
from anomaly_seg_ros.networks.importers import import_checkpoint


@pytest.fixture(scope="module")
def nvidia_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shaped like NVIDIA's save_snapshot(): DataParallel keys and the loss' class weights."""
    state = constant_state_dict(nvidia_wrn38_layout("module."))
    state["module.criterion.nll_loss.weight"] = torch.ones(19)
    path = tmp_path_factory.mktemp("nvidia") / "cityscapes_best.pth"
    torch.save(
        {
            "state_dict": state,
            "epoch": 175,
            "mean_iu": np.float64(0.8146),
            "command": "train.py --arch network.deepv3.DeepWV3Plus",
        },
        path,
    )
    return path


@pytest.fixture(scope="module")
def pebal_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shaped like PEBAL's save_checkpoint(): ``branch1.`` keys, 20 output channels."""
    state = constant_state_dict(nvidia_wrn38_layout("branch1.", num_classes=20))
    state["branch1.final.6.weight"] = torch.arange(20 * 256, dtype=torch.float32).reshape(
        20, 256, 1, 1
    )
    path = tmp_path_factory.mktemp("pebal") / "best_ad_ckpt.pth"
    torch.save({"model": state, "epoch": 40, "iteration": 1000}, path)
    return path


def test_nvidia_checkpoint_loads_strict_at_output_stride_8(nvidia_file: Path) -> None:
    network, meta = import_checkpoint(nvidia_file)

    assert network.architecture == {
        "backbone": "wideresnet38",
        "num_classes": 19,
        "output_stride": 8,
    }
    assert network.align_corners is True and meta.align_corners is True
    file_state = read_torch_file(nvidia_file)["state_dict"]
    loaded = network.state_dict()
    assert len(loaded) == len(file_state) - 1  # all but the loss' class weights
    assert all(torch.equal(loaded[key], file_state[f"module.{key}"]) for key in loaded)
    assert meta.meta["imported_from"] == "nvidia"
    assert meta.meta["stripped_prefixes"] == ["module."]
    assert meta.meta["mean_iu"] == pytest.approx(0.8146)
    with torch.no_grad():
        assert network(torch.randn(1, 3, 32, 32)).shape == (1, 19, 16, 16)


def test_pebal_checkpoint_drops_the_abstention_channel_by_default(pebal_file: Path) -> None:
    network, meta = import_checkpoint(pebal_file)

    assert network.num_classes == 19 and len(meta.class_names) == 19
    expected = torch.arange(19 * 256, dtype=torch.float32).reshape(19, 256, 1, 1)
    assert torch.equal(network.final_conv.weight, expected)
    assert meta.meta["imported_from"] == "pebal"
    assert meta.meta["extra_channel"] == "dropped"


def test_pebal_checkpoint_keeps_the_abstention_channel_on_request(pebal_file: Path) -> None:
    network, meta = import_checkpoint(pebal_file, kind="pebal", keep_extra_channel=True)

    assert network.num_classes == 20
    assert meta.class_names[-1] == "abstention" and meta.class_names[0] == "road"
    assert torch.equal(network.final_conv.weight[19].flatten(), torch.arange(19 * 256, 20 * 256.0))
    assert meta.meta["extra_channel"] == "kept"


def test_wrn38_file_with_a_wrong_kind_is_refused(pebal_file: Path) -> None:
    with pytest.raises(ModelError, match="kind='vainf' given, but the file looks like 'pebal'"):
        import_checkpoint(pebal_file, kind="vainf")
