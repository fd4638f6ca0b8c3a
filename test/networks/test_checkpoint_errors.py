"""Files that don't fit give a ModelError that says what is wrong (keys, format, safety)."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import pytest
import torch
from vendor_layouts import constant_state_dict, vainf_layout

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.networks.checkpoint import load_checkpoint
from anomaly_seg_ros.networks.importers import import_checkpoint


def _save(path: Path, payload: object) -> Path:
    torch.save(payload, path)
    return path


def test_missing_and_unexpected_keys_are_listed_with_counts(tmp_path: Path) -> None:
    state = constant_state_dict(vainf_layout("resnet50"))
    del state["backbone.layer2.1.bn2.running_var"]
    for index in range(7):  # more than the message shows: it must give the count
        state[f"classifier.extra.{index}.weight"] = torch.zeros(1)
    path = _save(tmp_path / "broken.pth", {"model_state": state})

    with pytest.raises(ModelError) as error:
        import_checkpoint(path)

    message = str(error.value)
    assert "1 missing key(s): backbone.layer2.1.bn2.running_var" in message
    assert "7 unexpected key(s): classifier.extra.0.weight" in message
    assert "(7 in all)" in message
    assert "resnet50" in message


def test_keys_of_another_shape_are_named(tmp_path: Path) -> None:
    state = constant_state_dict(vainf_layout("mobilenetv2"))
    state["classifier.project.0.weight"] = torch.zeros(48, 32, 1, 1)
    path = _save(tmp_path / "shape.pth", {"model_state": state})

    with pytest.raises(ModelError, match=r"classifier.project.0.weight \(48, 32, 1, 1\) != \(48"):
        import_checkpoint(path)


def test_unknown_layout_shows_its_first_keys(tmp_path: Path) -> None:
    path = _save(tmp_path / "other.pth", {"encoder.stem.weight": torch.zeros(3)})
    with pytest.raises(ModelError, match=r"unknown network layout.*encoder\.stem\.weight"):
        import_checkpoint(path)


def test_dict_without_weights_lists_its_keys(tmp_path: Path) -> None:
    path = _save(tmp_path / "meta.pth", {"epoch": 3, "note": "no weights"})
    with pytest.raises(ModelError, match=r"no weights found.*epoch, note"):
        import_checkpoint(path)


def test_missing_corrupt_and_unsafe_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        import_checkpoint(tmp_path / "nowhere.pth")

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a torch file at all")
    with pytest.raises(ModelError, match="not a readable torch checkpoint"):
        import_checkpoint(garbage)

    truncated = tmp_path / "truncated.pth"
    _save(truncated, {"model_state": constant_state_dict(vainf_layout("mobilenetv2"))})
    truncated.write_bytes(truncated.read_bytes()[:5000])
    with pytest.raises(ModelError, match="not a readable torch checkpoint"):
        import_checkpoint(truncated)

    # Training scripts often pickle their argparse options; rebuilding arbitrary classes
    # could run code, so weights_only refuses them and the message names the class.
    unsafe = _save(tmp_path / "unsafe.pth", {"model_state": {}, "args": Namespace(lr=0.1)})
    with pytest.raises(ModelError, match=r"weights_only.*argparse\.Namespace"):
        import_checkpoint(unsafe)


def test_bad_kind_and_foreign_file_for_our_loader(tmp_path: Path) -> None:
    path = _save(tmp_path / "vainf.pth", {"model_state": {"x": torch.zeros(1)}})
    with pytest.raises(ValueError, match="auto, anomaly_seg_ros, vainf, nvidia, pebal"):
        import_checkpoint(path, kind="torchvision")
    with pytest.raises(ModelError, match="use import_checkpoint"):
        load_checkpoint(path)
