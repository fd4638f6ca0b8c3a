"""OODMC on a small random DeepLabv3+ with real dropout: features, fit, metrics."""

import numpy as np
import pytest

from anomaly_seg_ros.datasets.anomaly import AnomalyDataset
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.evaluation.oodmc import OODMCConfig, OODMCScorer, evaluate_oodmc

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def network():
    from anomaly_seg_ros.networks import create_network

    torch.manual_seed(0)
    return create_network("mobilenetv2", num_classes=19, width_mult=0.25).eval()


def _frames(dataset, indices):
    frames = AnomalyDataset(dataset)
    return [frames.read(index) for index in indices]


def test_features_are_mc_moments_and_deterministic(network, dataset):
    ((rgb, label),) = _frames(dataset, [0])
    scorer = OODMCScorer(network, (64, 128), config=OODMCConfig(passes=4, order=3))
    features = scorer.features(rgb, label.shape)
    assert features.shape == (label.size, 19 * 3 + 1) and features.dtype == np.float32
    variance = features[:, 19:38]
    assert variance.min() >= 0 and variance.max() > 0  # dropout really is active
    np.testing.assert_array_equal(features, scorer.features(rgb, label.shape))
    assert not any(module.training for module in network.modules())  # restored to eval
    # The entropy of the mean softmax is bounded by log C.
    assert features[:, -1].max() <= np.log(19) + 1e-5


@pytest.mark.parametrize("classifier", ["logistic", "svm"])
def test_fit_and_evaluate(network, dataset, classifier):
    config = OODMCConfig(passes=3, order=2, classifier=classifier, max_train_pixels=5000)
    scorer = OODMCScorer(network, (64, 128), config=config)
    with pytest.raises(ConfigError, match="fit"):
        scorer.score(*_frames(dataset, [0])[0][:1], (96, 160))
    train = _frames(dataset, [0, 1, 2])
    scorer.fit(train)
    train_metrics, seconds = evaluate_oodmc(scorer, train)
    # The bright objects are linearly separable in these features on the fitted split.
    assert train_metrics.auroc > 0.9
    assert seconds > 0
    held_out, _ = evaluate_oodmc(scorer, _frames(dataset, [3, 4, 5]))
    assert held_out.num_frames == 3 and 0.0 <= held_out.auroc <= 1.0


def test_configuration_checks(network):
    with pytest.raises(ConfigError, match="passes"):
        OODMCConfig(passes=1)
    with pytest.raises(ConfigError, match="classifier"):
        OODMCConfig(classifier="forest")
    no_dropout = torch.nn.Conv2d(3, 19, 1)
    with pytest.raises(ConfigError, match="no dropout"):
        OODMCScorer(no_dropout, (8, 8))
