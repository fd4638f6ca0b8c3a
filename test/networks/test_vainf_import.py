"""VainF DeepLabV3Plus-Pytorch checkpoints, in the layout they are downloaded in, load strictly."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from vendor_layouts import constant_state_dict, random_state_dict, vainf_layout

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.model.classes import CITYSCAPES_CLASSES
from anomaly_seg_ros.networks.importers import import_checkpoint


def _write_vainf(path: Path, state: dict[str, torch.Tensor]) -> Path:
    """A file shaped like VainF's save_ckpt(): weights plus training state and a NumPy score."""
    parameter = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([parameter], lr=0.01, momentum=0.9)
    parameter.grad = torch.ones(2)
    optimizer.step()
    torch.save(
        {
            "cur_itrs": 30000,
            "model_state": state,
            "optimizer_state": optimizer.state_dict(),
            "scheduler_state": {"last_epoch": 30000, "power": 0.9, "base_lrs": [0.1]},
            "best_score": np.float64(0.7647),
        },
        path,
    )
    return path


@pytest.mark.parametrize("backbone", ["resnet50", "resnet101", "mobilenetv2"])
def test_vainf_file_loads_strict_with_every_tensor_in_place(tmp_path: Path, backbone: str) -> None:
    state = constant_state_dict(vainf_layout(backbone))
    path = _write_vainf(tmp_path / f"best_deeplabv3plus_{backbone}_cityscapes_os16.pth", state)

    network, meta = import_checkpoint(path)

    assert network.architecture["backbone"] == backbone
    assert network.architecture["output_stride"] == 16
    assert network.num_classes == 19 and not network.training
    loaded = network.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[key], state[key]) for key in state)
    assert meta.class_names == CITYSCAPES_CLASSES
    assert meta.class_names[0] == "road" and meta.class_names[18] == "bicycle"
    assert meta.align_corners is False
    assert meta.mean == (0.485, 0.456, 0.406)
    assert meta.meta["imported_from"] == "vainf"
    assert meta.meta["best_score"] == pytest.approx(0.7647)


def test_vainf_mobilenet_runs_and_can_be_built_at_output_stride_8(tmp_path: Path) -> None:
    state = random_state_dict(vainf_layout("mobilenetv2"))
    path = _write_vainf(tmp_path / "mobilenet.pth", state)

    network_16, _ = import_checkpoint(path, kind="vainf")
    network_8, meta_8 = import_checkpoint(path, output_stride=8)
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        logits_16, logits_8 = network_16(image), network_8(image)

    assert logits_16.shape == logits_8.shape == (1, 19, 16, 16)
    assert torch.isfinite(logits_16).all()
    # Same weights, a different dilation pattern: the predictions differ, though not wildly.
    assert not torch.allclose(logits_16, logits_8)
    assert meta_8.architecture["output_stride"] == 8
    assert meta_8.meta["trained_output_stride"] == 16


def test_checkpoint_saved_under_numpy_1_names_loads(tmp_path: Path) -> None:
    """Files from NumPy 1 refer to numpy.core.multiarray.scalar (renamed in NumPy 2)."""
    buffer = io.BytesIO()
    state = constant_state_dict(vainf_layout("mobilenetv2"))
    torch.save(
        {"model_state": state, "best_score": np.float64(0.7)},
        buffer,
        _use_new_zipfile_serialization=False,  # a plain pickle stream we can rename in
    )
    legacy = buffer.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in legacy
    path = tmp_path / "legacy.pth"
    path.write_bytes(legacy)

    network, meta = import_checkpoint(path)

    assert network.architecture["backbone"] == "mobilenetv2"
    assert meta.meta["best_score"] == pytest.approx(0.7)


def test_file_from_before_batchnorm_counters_loads(tmp_path: Path) -> None:
    """PyTorch < 0.4.1 saved no num_batches_tracked; such files still load."""
    state = constant_state_dict(vainf_layout("mobilenetv2"))
    old_state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert len(old_state) < len(state)
    path = _write_vainf(tmp_path / "old.pth", old_state)

    network, _ = import_checkpoint(path)

    loaded = network.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in old_state.items())
    assert loaded["classifier.project.1.num_batches_tracked"] == 0


def test_vainf_file_with_a_wrong_kind_is_refused(tmp_path: Path) -> None:
    path = _write_vainf(tmp_path / "r50.pth", constant_state_dict(vainf_layout("resnet50")))
    with pytest.raises(ModelError, match="kind='nvidia' given, but the file looks like 'vainf'"):
        import_checkpoint(path, kind="nvidia")
