"""Our checkpoint format: save → load gives the same network, names and metadata."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.networks import create_network
from anomaly_seg_ros.networks.checkpoint import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    save_checkpoint,
)
from anomaly_seg_ros.networks.importers import import_checkpoint

_NAMES = [f"class {index}" for index in range(5)]


@pytest.fixture
def small_network() -> torch.nn.Module:
    torch.manual_seed(0)
    network = create_network("mobilenetv2", num_classes=5, output_stride=8, width_mult=0.5)
    # Move BatchNorm statistics off their defaults so the round trip has to carry them.
    network.train()
    with torch.no_grad():
        network(torch.randn(2, 3, 64, 64))
    return network.eval()


def test_round_trip_restores_network_and_metadata(tmp_path: Path, small_network) -> None:
    path = save_checkpoint(
        tmp_path / "models" / "demo.pt",
        small_network,
        _NAMES,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        epoch=7,
        dataset="synthetic world",
    )

    network, meta = load_checkpoint(path)

    assert path.is_file() and not list(path.parent.glob("*.partial"))
    assert meta.class_names == tuple(_NAMES)
    assert meta.architecture == {
        "backbone": "mobilenetv2",
        "num_classes": 5,
        "output_stride": 8,
        "width_mult": 0.5,
    }
    assert meta.mean == (0.5, 0.5, 0.5) and meta.std == (0.25, 0.25, 0.25)
    assert meta.align_corners is False
    assert meta.meta == {"epoch": 7, "dataset": "synthetic world"}
    assert not network.training
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(network(image), small_network(image))


def test_file_is_plain_data_readable_with_weights_only(tmp_path: Path, small_network) -> None:
    path = save_checkpoint(tmp_path / "demo.pt", small_network, _NAMES)
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {
        "format",
        "version",
        "architecture",
        "state_dict",
        "class_names",
        "mean",
        "std",
        "align_corners",
        "meta",
    }
    assert payload["format"] == CHECKPOINT_FORMAT and payload["version"] == 1
    assert payload["mean"] == [0.485, 0.456, 0.406]


def test_import_checkpoint_recognises_our_format(tmp_path: Path, small_network) -> None:
    path = save_checkpoint(tmp_path / "demo.pt", small_network, _NAMES, source="test")
    network, meta = import_checkpoint(path)
    assert meta.meta == {"source": "test"}
    assert torch.equal(network.final_conv.weight, small_network.final_conv.weight)


def test_save_rejects_inconsistent_arguments(tmp_path: Path, small_network) -> None:
    with pytest.raises(ValueError, match="4 class names for a network with 5 classes"):
        save_checkpoint(tmp_path / "x.pt", small_network, _NAMES[:4])
    with pytest.raises(ValueError, match="JSON-able"):
        save_checkpoint(tmp_path / "x.pt", small_network, _NAMES, when=object())
    assert not (tmp_path / "x.pt").exists()


def test_load_rejects_other_versions_and_mismatched_names(tmp_path: Path, small_network) -> None:
    path = save_checkpoint(tmp_path / "demo.pt", small_network, _NAMES)
    payload = torch.load(path, weights_only=True)

    torch.save({**payload, "version": 2}, tmp_path / "v2.pt")
    with pytest.raises(ModelError, match="version 2 is not supported"):
        load_checkpoint(tmp_path / "v2.pt")

    torch.save({**payload, "class_names": ["a", "b"]}, tmp_path / "names.pt")
    with pytest.raises(ModelError, match="2 class names for 5 classes"):
        load_checkpoint(tmp_path / "names.pt")

    torch.save({**payload, "architecture": {"backbone": "vgg16"}}, tmp_path / "arch.pt")
    with pytest.raises(ModelError, match=r"malformed checkpoint.*vgg16"):
        load_checkpoint(tmp_path / "arch.pt")
