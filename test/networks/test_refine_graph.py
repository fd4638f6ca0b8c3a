"""The refinement in the graph equals the host refinement, on real frames of the demo model.

Real frames: the synthetic drive rendered at the bundled model's input size, run through
models/demo/demo.onnx under ONNX Runtime; the graph part is the exported refinement alone
(the same ONNX operators that :func:`append_refinement` adds to a model), fed the model's
own logit summary, against :func:`compute_score` + :func:`refine_score` on the host.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from anomaly_seg_ros.backends.onnxruntime import OnnxRuntimeBackend  # noqa: E402
from anomaly_seg_ros.config import SCORE_TYPES, DetectorConfig  # noqa: E402
from anomaly_seg_ros.errors import ModelError  # noqa: E402
from anomaly_seg_ros.model.graph_refinement import GraphRefinement  # noqa: E402
from anomaly_seg_ros.model.sidecar import (  # noqa: E402
    OUTPUT_NAMES,
    REFINED_SCORE_NAME,
    load_model_info,
)
from anomaly_seg_ros.model.sml_stats import load_sml_stats  # noqa: E402
from anomaly_seg_ros.model.summary import LogitSummary  # noqa: E402
from anomaly_seg_ros.networks.refine_graph import (  # noqa: E402
    GraphRefinementModule,
    _export_module,
    append_refinement,
)
from anomaly_seg_ros.pipeline.preprocess import to_network_input  # noqa: E402
from anomaly_seg_ros.pipeline.refine import refine_score  # noqa: E402
from anomaly_seg_ros.pipeline.scores import compute_score  # noqa: E402
from anomaly_seg_ros.pipeline.strips import StripPool  # noqa: E402
from demo.drive import DriveSpec, render_drive  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / "models" / "demo" / "demo.onnx"
TOLERANCE = 1e-5
ALL_ON = {"boundary_suppression": True, "dilated_smoothing": True, "vde": True}


@pytest.fixture(scope="module")
def demo_stats():
    info = load_model_info(DEMO)
    return load_sml_stats(DEMO.with_suffix(".sml.json"), info.class_names)


@pytest.fixture(scope="module")
def real_summaries():
    """The demo model's logit summaries of two rendered drive frames (two scenes)."""
    info = load_model_info(DEMO)
    spec = DriveSpec(frames=2, clip_frames=1, height=info.input_height, width=info.input_width)
    with OnnxRuntimeBackend(DEMO, info) as backend:
        return [backend.infer(to_network_input(frame.image, info)) for frame in render_drive(spec)]


def run_graph(config: DetectorConfig, summary: LogitSummary, tmp_path: Path, stats=None):
    """The refinement exported to ONNX alone, run under ONNX Runtime on ``summary``."""
    module = GraphRefinementModule(GraphRefinement.from_config(config, stats))
    path = tmp_path / "refinement.onnx"
    _export_module(module, summary.shape, path, 18)
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    feed = {name: getattr(summary, name)[None] for name in OUTPUT_NAMES}
    return session.run([REFINED_SCORE_NAME], feed)[0][0]


def host(config: DetectorConfig, summary: LogitSummary, stats=None, pool=None):
    mean, std = stats if stats is not None else (None, None)
    return refine_score(
        compute_score(config.score_type, summary, mean, std), summary, config, pool
    )


def assert_equal_to_host(config, summaries, tmp_path, stats=None):
    module = GraphRefinementModule(GraphRefinement.from_config(config, stats))
    path = tmp_path / "refinement.onnx"
    _export_module(module, summaries[0].shape, path, 18)
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    for summary in summaries:
        feed = {name: getattr(summary, name)[None] for name in OUTPUT_NAMES}
        graph = session.run([REFINED_SCORE_NAME], feed)[0][0]
        expected = host(config, summary, stats)
        assert graph.shape == expected.shape and graph.dtype == np.float32
        assert np.max(np.abs(graph - expected)) <= TOLERANCE


@pytest.mark.parametrize("score_type", SCORE_TYPES)
def test_every_score_with_every_refinement_equals_host(
    score_type, real_summaries, demo_stats, tmp_path
):
    config = DetectorConfig(score_type=score_type, **ALL_ON)
    assert_equal_to_host(config, real_summaries, tmp_path, demo_stats)


@pytest.mark.parametrize("score_type", SCORE_TYPES)
def test_every_score_alone_equals_host(score_type, real_summaries, demo_stats, tmp_path):
    config = DetectorConfig(score_type=score_type)
    assert_equal_to_host(config, real_summaries, tmp_path, demo_stats)


@pytest.mark.parametrize("refinement", sorted(ALL_ON))
def test_each_refinement_alone_equals_host(refinement, real_summaries, tmp_path):
    config = DetectorConfig(score_type="max_logit", **{refinement: True})
    assert_equal_to_host(config, real_summaries, tmp_path)


def test_other_refinement_parameters_equal_host(real_summaries, tmp_path):
    config = DetectorConfig(
        score_type="entropy",
        **ALL_ON,
        boundary_width=8,
        boundary_iterations=4,
        smoothing_kernel=5,
        smoothing_sigma=2.0,
        smoothing_dilation=3,
        road_class=1,  # sidewalk: other seeds and spans
        road_confidence=0.5,
        vde_inside_boost=0.25,
        vde_outside_penalty=2.0,
    )
    assert_equal_to_host(config, real_summaries, tmp_path)


def test_vde_in_score_units_and_from_an_old_sidecar_equals_host(real_summaries, tmp_path):
    config = DetectorConfig(score_type="entropy", vde=True, vde_units="score")
    assert_equal_to_host(config, real_summaries, tmp_path)
    # A record written before vde_units existed means score units, as the graph computed.
    old = GraphRefinement.from_config(config).to_json()
    del old["settings"]["vde_units"]
    assert GraphRefinement.from_json(old).matches(config, None)


def test_the_graph_score_spread_equals_the_host_one(real_summaries):
    from anomaly_seg_ros.networks.refine_graph import score_spread
    from anomaly_seg_ros.pipeline.refine import score_spread as host_spread

    for summary in real_summaries:
        for score_type in ("msp", "entropy", "max_logit", "energy"):
            score = compute_score(score_type, summary)
            graph = float(score_spread(torch.from_numpy(score)[None])[0, 0, 0])
            assert graph == pytest.approx(host_spread(score), rel=1e-6)
            score[10, 10] = np.nan
            graph = float(score_spread(torch.from_numpy(score)[None])[0, 0, 0])
            assert graph == pytest.approx(host_spread(score), rel=1e-6)


@pytest.mark.parametrize("road_confidence", [0.0, 1.0])
def test_road_confidence_extremes_equal_host(road_confidence, real_summaries, tmp_path):
    config = DetectorConfig(vde=True, road_confidence=road_confidence)
    assert_equal_to_host(config, real_summaries, tmp_path)


def test_borders_and_thin_regions_equal_host(rng, tmp_path):
    """Class blocks touching every image edge, one-pixel stripes and a road row span at
    the very edges: where OpenCV's border rules (dilate/erode ignore outside pixels,
    filters replicate) decide the result."""
    height, width = 40, 72
    label = rng.integers(0, 3, size=(height // 4, width // 8)).repeat(4, 0).repeat(8, 1)
    label = label.astype(np.uint8)
    label[:, 0] = 5
    label[-1, :] = 7
    label[10, :] = 0
    label[:, 33] = 0
    max_logit = rng.normal(8, 3, (height, width)).astype(np.float32)
    logsumexp = max_logit + rng.uniform(0, 0.5, (height, width)).astype(np.float32)
    summary = LogitSummary(
        label,
        max_logit,
        max_logit - 10,
        logsumexp,
        rng.uniform(0, 2, (height, width)).astype(np.float32),
    )
    for score_type in ("max_logit", "entropy"):
        config = DetectorConfig(score_type=score_type, **ALL_ON, road_confidence=0.7)
        expected = host(config, summary)
        assert np.max(np.abs(run_graph(config, summary, tmp_path) - expected)) <= TOLERANCE


def test_host_strip_pool_and_graph_agree(real_summaries, tmp_path):
    """The Detector refines on its strip pool; the graph equals that too."""
    config = DetectorConfig(score_type="max_logit", **ALL_ON)
    with StripPool(2) as pool:
        expected = host(config, real_summaries[0], pool=pool)
    graph = run_graph(config, real_summaries[0], tmp_path)
    assert np.max(np.abs(graph - expected)) <= TOLERANCE


def test_graph_ops_are_whole_map_operators(tmp_path):
    """No loops, no custom ops: what TensorRT's ONNX parser takes."""
    config = DetectorConfig(score_type="sml", **ALL_ON)
    stats = (np.zeros(19, np.float32), np.ones(19, np.float32))
    module = GraphRefinementModule(GraphRefinement.from_config(config, stats))
    path = tmp_path / "refinement.onnx"
    _export_module(module, (32, 64), path, 18)
    ops = {node.op_type for node in onnx.load(os.fspath(path)).graph.node}
    assert not ops & {"Loop", "Scan", "If"}
    assert {"MaxPool", "Conv", "Pad", "ReduceMin", "ReduceMax"} <= ops
    assert ops & {"Gather", "GatherND"}  # the SML table lookup


def test_append_to_the_demo_model_records_the_choice(demo_stats, tmp_path):
    config = DetectorConfig(score_type="sml", **ALL_ON)
    out = tmp_path / "refined.onnx"
    info = append_refinement(DEMO, out, config, demo_stats)
    assert info.output_names == (*OUTPUT_NAMES, REFINED_SCORE_NAME)
    assert load_model_info(out) == info
    assert info.graph_refinement.matches(config, demo_stats)
    outputs = [o.name for o in onnx.load(os.fspath(out)).graph.output]
    assert outputs == [*OUTPUT_NAMES, REFINED_SCORE_NAME]
    with pytest.raises(ModelError, match="already computes a refined score"):
        append_refinement(out, tmp_path / "twice.onnx", config, demo_stats)
    with pytest.raises(ModelError, match="SML stats"):
        append_refinement(DEMO, tmp_path / "nostats.onnx", config)
    assert not (tmp_path / "nostats.onnx").exists()


def test_matching_ignores_switched_off_parameters_and_checks_stats(demo_stats):
    config = DetectorConfig(score_type="sml", vde=True)
    record = GraphRefinement.from_config(config, demo_stats)
    assert record.matches(config.replace(boundary_width=8, smoothing_sigma=3.0), demo_stats)
    assert record.matches(config.replace(threshold=5.0, min_area=30), demo_stats)
    assert not record.matches(config.replace(road_confidence=0.8), demo_stats)
    assert not record.matches(config.replace(score_type="entropy"), demo_stats)
    assert not record.matches(config.replace(dilated_smoothing=True), demo_stats)
    other = (demo_stats[0] + 1, demo_stats[1])
    assert not record.matches(config, other)
    assert not record.matches(config, None)
    assert GraphRefinement.from_json(record.to_json()) == record


@pytest.mark.parametrize(
    "data",
    [
        {"settings": {"score_type": "nope", "boundary_suppression": False}},
        {"settings": {"score_type": "sml", "boundary_suppression": False}},
        {
            "settings": {
                "score_type": "sml",
                "boundary_suppression": False,
                "dilated_smoothing": False,
                "vde": False,
            }
        },
        {"settings": dataclasses.asdict(DetectorConfig())},
        [],
    ],
)
def test_bad_sidecar_records_are_refused(data):
    with pytest.raises(ModelError):
        GraphRefinement.from_json(data, "model.json")
