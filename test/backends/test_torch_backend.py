"""The torch backend: the head's summary, and the refinement after it when the sidecar
records one (the torch form of an engine exported with ``refine_in_graph``)."""

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from anomaly_seg_ros.backends.torch import TorchBackend
from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.graph_refinement import GraphRefinement
from anomaly_seg_ros.model_info import ModelInfo
from anomaly_seg_ros.networks import create_network
from anomaly_seg_ros.networks.refine_graph import REFINED_SCORE_TOLERANCE
from anomaly_seg_ros.refine import refine_score
from anomaly_seg_ros.scores import compute_score

NAMES = tuple(f"class{i}" for i in range(19))
GRAPH = DetectorConfig(
    score_type="sml",
    boundary_suppression=True,
    dilated_smoothing=True,
    vde=True,
    road_confidence=0.0,
)
STATS = (np.linspace(-1, 1, 19, dtype=np.float32), np.linspace(0.5, 1.5, 19, dtype=np.float32))


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return create_network("mobilenetv2", num_classes=19, output_stride=16, width_mult=0.25)


def test_the_refinement_runs_after_the_head_and_equals_the_host(network, tmp_path, rng):
    plain_info = ModelInfo(NAMES, 64, 128)
    refined_info = replace(plain_info, graph_refinement=GraphRefinement.from_config(GRAPH, STATS))
    frame = rng.integers(0, 256, size=(64, 128, 3), dtype=np.uint8)
    plain = TorchBackend(tmp_path / "m.pt", plain_info, network)
    refined = TorchBackend(tmp_path / "m.pt", refined_info, network)
    assert "refinement in the graph" in refined.describe()
    with Detector(plain, GRAPH, STATS) as host_side, Detector(refined, GRAPH, STATS) as graph_side:
        host = host_side.detect(frame)
        graph = graph_side.detect(frame)
    assert host.summary.refined_score is None
    assert graph.summary.refined_score is not None
    assert graph.score is graph.summary.refined_score  # the host only thresholds
    np.testing.assert_array_equal(graph.summary.label, host.summary.label)
    expected = refine_score(compute_score("sml", host.summary, *STATS), host.summary, GRAPH)
    # Same float32 formulas summed in another order: a few ulps of the score's magnitude.
    tolerance = REFINED_SCORE_TOLERANCE * max(1.0, float(np.max(np.abs(expected))))
    assert np.max(np.abs(graph.score - expected)) <= tolerance
    assert np.max(np.abs(expected)) > 0.1  # a real map, not zeros on both sides
