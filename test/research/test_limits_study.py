"""The limits study's pieces: what trains, the on-disk feature cache, the report's references."""

import numpy as np
import pytest
import torch

from anomaly_seg_ros.networks import create_network
from research import limits_report, limits_study


def _head(decoder="dense"):
    network = create_network("mobilenetv2", num_classes=5, width_mult=0.25, decoder=decoder)
    return network.eval().classifier


# The network's own name for its final 1x1, per decoder layout.
FINAL_CONV = {"dense": "classifier.classifier.3", "separable": "classifier.classifier.6"}


@pytest.mark.parametrize("decoder", sorted(FINAL_CONV))
def test_each_part_names_its_parameters(decoder):
    network = create_network("mobilenetv2", num_classes=5, width_mult=0.25, decoder=decoder)
    head = network.classifier
    final = {id(p) for p in limits_study.trainable(head, "final")}
    block = {id(p) for p in limits_study.trainable(head, "block")}
    decoder_part = {id(p) for p in limits_study.trainable(head, "decoder")}
    assert final == {id(p) for p in network.get_submodule(FINAL_CONV[decoder]).parameters()}
    assert final == {id(p) for p in network.final_conv.parameters()}
    assert final < block < decoder_part
    assert block == {id(p) for p in head.classifier.parameters()}


@pytest.mark.parametrize("decoder", sorted(FINAL_CONV))
def test_block_forward_equals_the_head(decoder):
    head = _head(decoder)
    low = torch.randn(1, head.project[0].in_channels, 16, 32)
    high = torch.randn(1, head.aspp.convs[0][0].in_channels, 4, 8)
    with torch.no_grad():
        expected = head(low, high)
        for part in ("block", "decoder", "final"):
            assert torch.allclose(limits_study.forward(head, part, low, high), expected)


def test_features_are_built_once_then_read_from_disk(tmp_path):
    calls = []

    def build():
        calls.append(1)
        data = torch.arange(6, dtype=torch.float16).reshape(1, 6, 1, 1)
        return limits_study.TrunkFeatures(data, data * 2, torch.zeros(1, 2, 2, dtype=torch.uint8))

    first = limits_study.disk_cached(tmp_path, ("test", 1), build)
    second = limits_study.disk_cached(tmp_path, ("test", 1), build)
    other = limits_study.disk_cached(tmp_path, ("test", 2), build)
    assert len(calls) == 2 and torch.equal(first.high, second.high) and len(other) == 1
    assert not list(tmp_path.glob("*.partial"))
    assert limits_study.disk_cached(None, ("test", 1), build) is not None and len(calls) == 3


def _record(variant, seed, miou, ap, fpr):
    return {"variant": variant, "seed": seed, "miou": miou, "test/max_logit/ap": ap,
            "test/max_logit/fpr95": fpr}  # fmt: skip


def test_ratios_use_the_rows_own_base_and_control():
    weak = "weak base (block re-trained from scratch, 60 steps)"
    records = [
        _record(limits_report.BASELINE, None, 0.70, 0.02, 0.60),
        _record("block (3x3+BN+ReLU+1x1)", 0, 0.69, 0.08, 0.30),
        _record("block (3x3+BN+ReLU+1x1)", 1, 0.69, 0.06, 0.30),
        _record("block control: L_id only", 0, 0.71, 0.02, 0.62),
        _record(weak + ", no fine-tuning", 0, 0.50, 0.01, 0.90),
        _record(weak + " + block", 0, 0.52, 0.02, 0.80),
        _record("1x1 (today)", 0, 0.72, 0.03, 0.55),
    ]
    checks = limits_report.targets(limits_report.aggregate(records))
    block = checks["block (3x3+BN+ReLU+1x1)"]
    assert block["ap_ratio"] == pytest.approx(3.5) and block["fpr95_ratio"] == pytest.approx(0.5)
    assert block["miou_drop_vs_control"] == pytest.approx(2.0) and not block["meets"]
    assert block["seeds"] == 2 and block["control"] == "block control: L_id only"
    on_weak = checks[weak + " + block"]
    assert on_weak["base"] == weak + ", no fine-tuning" == on_weak["control"]
    assert on_weak["ap_ratio"] == pytest.approx(2.0)
    assert checks["1x1 (today)"]["control"] == "1x1 control: L_id only"
    assert weak + ", no fine-tuning" not in checks and limits_report.BASELINE not in checks
    assert np.isnan(checks["1x1 (today)"]["miou_drop_vs_control"])  # no control record
