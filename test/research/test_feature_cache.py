"""The experiment's cached-feature shortcut agrees with the real network and evaluation."""

import numpy as np
import pytest
import torch

from anomaly_seg_ros.model.sidecar import IMAGENET_MEAN, IMAGENET_STD
from anomaly_seg_ros.networks import create_network
from research.feature_cache import (
    cache_frames,
    evaluate_head,
    penultimate,
    sample_order,
)
from training.finetune_data import IndexedFrames
from training.finetune_eval import EvalSettings, evaluate

CLASSES = ("a", "b", "c", "d")
SCORES = ("max_logit", "energy", "max_min_logit")


@pytest.fixture(scope="module")
def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_network("mobilenetv2", num_classes=4, width_mult=0.25).eval()


def _frames(anomalies: bool) -> IndexedFrames:
    rng = np.random.default_rng(int(anomalies))
    frames = []
    for _ in range(3):
        image = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
        label = rng.integers(0, 4, (64, 96)).astype(np.uint8)
        if anomalies:
            label = (label == 3).astype(np.uint8)
        frames.append((image, label))
    return IndexedFrames(frames)


def test_final_conv_of_cached_features_is_the_network_output(network):
    images = torch.randn(2, 3, 64, 96)
    features = penultimate(network, images)
    with torch.no_grad():
        direct = network(images)
        cached = network.final_conv(features.float())
    torch.testing.assert_close(cached, direct, atol=2e-2, rtol=0)  # float16 cache


def test_cached_evaluation_matches_the_tool(network):
    val, anomaly = _frames(False), _frames(True)
    settings = EvalSettings(IMAGENET_MEAN, IMAGENET_STD, scores=SCORES)
    direct = evaluate(network, settings, CLASSES, val, anomaly)
    cached = evaluate_head(
        lambda x: network.final_conv(x),
        network.align_corners,
        CLASSES,
        cache_frames(network, val, IMAGENET_MEAN, IMAGENET_STD),
        cache_frames(network, anomaly, IMAGENET_MEAN, IMAGENET_STD),
        SCORES,
    )
    assert cached["miou_present"] == pytest.approx(direct.miou_present, abs=5e-3)
    for score in SCORES:
        expected = direct.anomaly[score]
        assert cached[f"{score}/ap"] == pytest.approx(expected.average_precision, abs=5e-3)
        assert cached[f"{score}/auroc"] == pytest.approx(expected.auroc, abs=5e-3)


def test_sample_order_visits_every_sample_once_per_epoch():
    order = sample_order(10, 4, 5, seed=0)
    assert order.shape == (5, 4)
    assert sorted(order.ravel()[:10].tolist()) == list(range(10))
