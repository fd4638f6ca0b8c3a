"""The Detector takes the graph's refined score when its settings are the graph's, and
runs the host refinement when they differ (run-time switching keeps working)."""

import numpy as np
import pytest

pytest.importorskip("torch")

from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.model.sml_stats import save_sml_stats
from anomaly_seg_ros.networks.refine_graph import append_refinement
from anomaly_seg_ros.pipeline.refine import refine_score
from anomaly_seg_ros.pipeline.scores import compute_score

NAMES = [f"class{i}" for i in range(19)]
GRAPH = DetectorConfig(
    score_type="sml",
    boundary_suppression=True,
    dilated_smoothing=True,
    vde=True,
    road_confidence=0.0,
)


@pytest.fixture(scope="module")
def refined_model(tiny_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("refined")
    mean, std = np.linspace(-1, 1, 19), np.linspace(0.5, 1.5, 19)
    stats_path = save_sml_stats(folder / "refined.sml.json", NAMES, mean, std)
    stats = (mean.astype(np.float32), std.astype(np.float32))
    model = append_refinement(tiny_model, folder / "refined.onnx", GRAPH, stats)
    assert model.graph_refinement is not None
    return folder / "refined.onnx", stats_path


def host_score(config, result, stats):
    mean, std = stats if stats is not None else (None, None)
    score = compute_score(config.score_type, result.summary, mean, std)
    return refine_score(score, result.summary, config)


def test_graph_score_is_used_while_settings_match_and_host_after_a_switch(refined_model, rng):
    model, stats_path = refined_model
    # Camera size = network size: the published score is the chosen map itself.
    frame = rng.integers(0, 256, size=(64, 128, 3), dtype=np.uint8)
    with Detector.from_path(model, GRAPH, "onnxruntime", stats_path) as detector:
        graph = detector.detect(frame)
        assert graph.summary.refined_score is not None
        assert graph.score is graph.summary.refined_score  # the graph's map, no host work
        host = host_score(GRAPH, graph, detector.sml_stats)
        assert np.max(np.abs(graph.score - host)) <= 1e-5
        # Mask settings are the host's anyway: changing them keeps the graph path.
        detector.config = GRAPH.replace(threshold=0.5, min_area=3)
        masked = detector.detect(frame)
        assert masked.score is masked.summary.refined_score
        for switched in (
            GRAPH.replace(score_type="entropy"),
            GRAPH.replace(vde=False),
            GRAPH.replace(boundary_width=8),
            GRAPH.replace(road_confidence=0.5),
        ):
            detector.config = switched
            result = detector.detect(frame)
            assert result.score is not result.summary.refined_score
            np.testing.assert_array_equal(
                result.score, host_score(switched, result, detector.sml_stats)
            )
        detector.config = GRAPH  # and back to the graph's choice
        back = detector.detect(frame)
        assert back.score is back.summary.refined_score


def test_other_sml_statistics_fall_back_to_the_host(refined_model, tmp_path, rng):
    model, _ = refined_model
    other = save_sml_stats(tmp_path / "other.sml.json", NAMES, np.zeros(19), np.ones(19))
    frame = rng.integers(0, 256, size=(64, 128, 3), dtype=np.uint8)
    with Detector.from_path(model, GRAPH, "onnxruntime", other) as detector:
        result = detector.detect(frame)
        assert result.score is not result.summary.refined_score
        np.testing.assert_array_equal(result.score, host_score(GRAPH, result, detector.sml_stats))
