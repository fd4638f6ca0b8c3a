"""Head-only fine-tuning end to end on a tiny real DeepLabv3+ (CPU, a few steps)."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.model.sidecar import load_model_info
from anomaly_seg_ros.model.sml_stats import load_sml_stats
from anomaly_seg_ros.networks import create_network
from anomaly_seg_ros.networks.checkpoint import CheckpointMeta, load_checkpoint
from training.anomalymix import AnomalyMixConfig
from training.coco_subset import ObjectBank
from training.finetune import finetune
from training.finetune_config import FinetuneConfig
from training.finetune_data import IndexedFrames, SampleConfig
from training.finetune_setup import poly_schedule, set_finetune_mode, trainable_modules
from training.mgu import MguConfig

CLASSES = ("road", "wall", "sky", "tree")


def _network() -> tuple[torch.nn.Module, CheckpointMeta]:
    torch.manual_seed(0)
    network = create_network("mobilenetv2", num_classes=4, width_mult=0.25)
    return network, CheckpointMeta(class_names=CLASSES, architecture=network.architecture)


def _frames(count: int, anomalies: bool = False) -> IndexedFrames:
    rng = np.random.default_rng(count)
    frames = []
    for _ in range(count):
        image = np.zeros((64, 96, 3), np.uint8)
        labels = np.zeros((64, 96), np.uint8)
        for index, (top, colour) in enumerate(((48, 90), (30, 150), (0, 220), (15, 40))):
            image[top:] = colour + rng.integers(0, 20, (64 - top, 96, 3))
            labels[top:] = (0, 1, 2, 3)[index] if not anomalies else 0
        if anomalies:
            image[20:40, 30:60] = (250, 30, 30)
            labels[20:40, 30:60] = 1
        frames.append((image, labels))
    return IndexedFrames(frames)


def _config(**changes) -> FinetuneConfig:
    settings = dict(
        epochs=2,
        batch_size=2,
        lr=1e-3,
        sample=SampleConfig(crop_size=(48, 64), scale_range=(0.8, 1.0)),
        mix=AnomalyMixConfig(probability=0.5, style="reinhard"),
        workers=0,
        export_size=None,
        progress=False,
    )
    settings.update(changes)
    return FinetuneConfig(**settings)


def test_head_only_changes_only_the_final_conv(object_bank_dir, tmp_path):
    network, meta = _network()
    before = {name: value.clone() for name, value in network.state_dict().items()}
    result = finetune(
        network, meta, _config(export_size=(64, 96)), _frames(6), tmp_path,
        bank=ObjectBank(object_bank_dir), val_frames=_frames(2), anomaly_frames=_frames(2, True),
    )  # fmt: skip
    after = network.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed == {"classifier.classifier.3.weight", "classifier.classifier.3.bias"}
    assert [record["epoch"] for record in result.history] == [0, 1, 2]
    assert {"miou", "max_logit/ap", "energy/fpr95", "max_min_logit/auroc"} <= set(
        result.history[-1]
    )
    assert result.history[-1]["seconds"] > 0 and result.history[-1]["ood"] > 0
    reloaded, reloaded_meta = load_checkpoint(result.checkpoint)
    assert torch.equal(
        reloaded.state_dict()["classifier.classifier.3.bias"],
        after["classifier.classifier.3.bias"],
    )
    assert reloaded_meta.meta["finetune"]["config"]["loss"]["k"] == 5
    info = load_model_info(result.onnx)
    assert info.class_names == CLASSES and info.input_size == (64, 96)
    session = ort.InferenceSession(str(result.onnx), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"image": np.zeros((1, 3, 64, 96), np.float32)})
    assert outputs[0].shape == (1, 64, 96)
    mean, std = load_sml_stats(result.sml_stats, CLASSES)  # recalibrated for the new head
    assert result.sml_stats.name == "model.sml.json"
    assert np.all(std > 0) and np.any(mean != 0)


def _changed_by_one_epoch(network, meta, part, bank_dir, out) -> set[str]:
    """Names of the state entries one epoch of fine-tuning ``part`` changed."""
    before = {name: value.clone() for name, value in network.state_dict().items()}
    config = _config(epochs=1, train_part=part)
    finetune(network, meta, config, _frames(4), out, bank=ObjectBank(bank_dir))
    after = network.state_dict()
    return {name for name in before if not torch.equal(before[name], after[name])}


def test_decoder_flag_trains_decoder_but_keeps_statistics(object_bank_dir, tmp_path):
    network, meta = _network()
    changed = _changed_by_one_epoch(network, meta, "decoder", object_bank_dir, tmp_path)
    assert "classifier.aspp.project.0.weight" in changed
    assert not any(name.startswith("backbone.") for name in changed)
    assert not any("running_" in name or "num_batches" in name for name in changed)


class _PowerCut(IndexedFrames):
    """Frames that fail after ``reads`` reads, like a run killed in the middle of an epoch."""

    def __init__(self, frames: IndexedFrames, reads: int) -> None:
        super().__init__(frames.frames)
        self.reads = reads

    def read(self, index: int):
        self.reads -= 1
        if self.reads < 0:
            raise RuntimeError("power cut")
        return super().read(index)


def test_resume_continues_where_it_stopped(object_bank_dir, tmp_path):
    bank = ObjectBank(object_bank_dir)
    straight, meta = _network()
    finetune(straight, meta, _config(epochs=2), _frames(6), tmp_path / "a", bank=bank)
    interrupted, _ = _network()
    with pytest.raises(RuntimeError, match="power cut"):  # 6 reads per epoch: dies in epoch 2
        finetune(
            interrupted,
            meta,
            _config(epochs=2),
            _PowerCut(_frames(6), 8),
            tmp_path / "b",
            bank=bank,
        )
    again, _ = _network()  # a fresh process: base weights, then the state file
    result = finetune(again, meta, _config(epochs=2), _frames(6), tmp_path / "b", bank=bank)
    assert [record["epoch"] for record in result.history] == [1, 2]
    for name, value in straight.state_dict().items():
        torch.testing.assert_close(again.state_dict()[name], value, rtol=0, atol=1e-6)


def test_mgu_as_the_only_ood_source(tmp_path):
    network, meta = _network()
    config = _config(
        epochs=1, mix=None, mgu=MguConfig(probability=1.0, max_steps=2, min_pixels=16)
    )
    result = finetune(network, meta, config, _frames(4), tmp_path)
    assert result.history[-1]["ood"] > 0  # MGU produced OoD pixels


def test_block_part_trains_only_the_classification_block(object_bank_dir, tmp_path):
    network, meta = _network()
    changed = _changed_by_one_epoch(network, meta, "block", object_bank_dir, tmp_path)
    # 3x3 conv and BN affine of classifier.classifier, and the final 1x1; nothing else
    assert {"classifier.classifier.0.weight", "classifier.classifier.3.weight"} <= changed
    assert all(name.startswith("classifier.classifier.") for name in changed)
    assert not any("running_" in name or "num_batches" in name for name in changed)
    with pytest.raises(ConfigError, match="train_part 'head': choose one of final_conv"):
        _config(train_part="head")


def test_frozen_modes_schedule_and_errors(tmp_path):
    network, meta = _network()
    modules = trainable_modules(network, "decoder")
    network.train()
    set_finetune_mode(network, modules)
    assert network.classifier.training and not network.backbone.training
    batch_norms = [m for m in network.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batch_norms and not any(m.training for m in batch_norms)
    schedule = poly_schedule(10, 0.9)
    assert schedule(0) == 1.0 and schedule(10) == 0.0
    assert schedule(5) == pytest.approx(0.5**0.9)
    with pytest.raises(ConfigError, match="OoD source"):
        _config(mix=None)
    with pytest.raises(ConfigError, match="bank"):
        finetune(network, meta, _config(), _frames(4), tmp_path)
    with pytest.raises(ConfigError, match="fewer than one batch"):
        finetune(network, meta, _config(mix=None, mgu=MguConfig()), _frames(1), tmp_path)
