"""The torch backend: the head's summary, and the refinement after it when the sidecar
records one (the torch form of an engine exported with ``refine_in_graph``)."""

import copy
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from anomaly_seg_ros.backends.torch import TorchBackend
from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.model.graph_refinement import GraphRefinement
from anomaly_seg_ros.model.sidecar import ModelInfo
from anomaly_seg_ros.networks import create_network
from anomaly_seg_ros.networks.refine_graph import REFINED_SCORE_TOLERANCE
from anomaly_seg_ros.pipeline.refine import refine_score
from anomaly_seg_ros.pipeline.scores import compute_score

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


CUDA = pytest.param(
    "cuda",
    marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ],
)


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_the_refinement_runs_after_the_head_and_equals_the_host(network, device, tmp_path, rng):
    plain_info = ModelInfo(NAMES, 64, 128)
    refined_info = replace(plain_info, graph_refinement=GraphRefinement.from_config(GRAPH, STATS))
    frame = rng.integers(0, 256, size=(64, 128, 3), dtype=np.uint8)
    # The CPU path is the reference on both devices (the backend moves its network).
    plain = TorchBackend(tmp_path / "m.pt", plain_info, copy.deepcopy(network))
    refined = TorchBackend(tmp_path / "m.pt", refined_info, copy.deepcopy(network), device=device)
    assert "refinement in the graph" in refined.describe()
    with Detector(plain, GRAPH, STATS) as host_side, Detector(refined, GRAPH, STATS) as graph_side:
        host = host_side.detect(frame)
        graph = graph_side.detect(frame)
    assert host.summary.refined_score is None
    assert graph.summary.refined_score is not None
    assert graph.score is graph.summary.refined_score  # the host only thresholds
    if device == "cpu":  # another device's convolutions may flip a near-tie's argmax
        np.testing.assert_array_equal(graph.summary.label, host.summary.label)
    # The device's refinement against the host's refinement of the device's own summary.
    expected = refine_score(compute_score("sml", graph.summary, *STATS), graph.summary, GRAPH)
    # Same float32 formulas summed in another order: a few ulps of the score's magnitude.
    tolerance = REFINED_SCORE_TOLERANCE * max(1.0, float(np.max(np.abs(expected))))
    assert np.max(np.abs(graph.score - expected)) <= tolerance
    assert np.max(np.abs(expected)) > 0.1  # a real map, not zeros on both sides
