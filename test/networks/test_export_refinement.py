"""The export option: ``export_onnx(..., refine_in_graph=...)`` and ``anomaly-seg export
--refine-in-graph`` (from a network, or appended to an exported model)."""

import json

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")

from anomaly_seg_ros.cli import main  # noqa: E402
from anomaly_seg_ros.config import DetectorConfig  # noqa: E402
from anomaly_seg_ros.model.summary import OUTPUT_NAMES, REFINED_SCORE_NAME  # noqa: E402
from anomaly_seg_ros.networks import create_network  # noqa: E402
from anomaly_seg_ros.networks.export import export_onnx, parity_inputs  # noqa: E402
from anomaly_seg_ros.networks.refine_graph import refinement_error  # noqa: E402

CLASSES = [f"c{i}" for i in range(19)]


def test_export_with_refinement_in_the_graph(tmp_path):
    torch.manual_seed(3)
    network = create_network("mobilenetv2", 19, 16, width_mult=0.25)
    config = DetectorConfig(score_type="entropy", boundary_suppression=True, vde=True)
    path = tmp_path / "refined.onnx"
    info = export_onnx(network, path, (48, 96), CLASSES, refine_in_graph=config)
    assert [o.name for o in onnx.load(str(path)).graph.output] == [
        *OUTPUT_NAMES,
        REFINED_SCORE_NAME,
    ]
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["output_names"][-1] == REFINED_SCORE_NAME
    assert sidecar["graph_refinement"]["settings"]["score_type"] == "entropy"
    assert info.graph_refinement.matches(config, None)
    for image in parity_inputs(48, 96):
        error, _ = refinement_error(path, info, image, None)
        assert error <= 1e-5
    # Only the finished model is left in the folder (no staging files).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["refined.json", "refined.onnx"]


def test_cli_appends_the_refinement_of_a_params_file(tiny_model, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    score_type: max_logit\n    dilated_smoothing: true\n"
        "    threshold: 3.0\n"
    )
    out = tmp_path / "refined.onnx"
    code = main(
        ["export", "--onnx", str(tiny_model), "--refine-in-graph", str(params), "--out", str(out)]
    )
    assert code == 0
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["graph_refinement"]["settings"] == {
        "score_type": "max_logit",
        "boundary_suppression": False,
        "dilated_smoothing": True,
        "vde": False,
        "smoothing_kernel": 7,
        "smoothing_sigma": 1.0,
        "smoothing_dilation": 6,
    }
    # The model it started from is unchanged.
    assert "graph_refinement" not in json.loads(tiny_model.with_suffix(".json").read_text())


def test_cli_refuses_onnx_without_a_refinement_and_sml_without_stats(tiny_model, tmp_path):
    out = tmp_path / "refined.onnx"
    assert main(["export", "--onnx", str(tiny_model), "--out", str(out)]) != 0
    params = tmp_path / "sml.yaml"
    params.write_text("/**:\n  ros__parameters:\n    score_type: sml\n")
    command = ["export", "--onnx", str(tiny_model), "--refine-in-graph", str(params)]
    assert main([*command, "--out", str(out)]) != 0
    assert not out.exists() and not out.with_suffix(".json").exists()
    stats = tmp_path / "s.sml.json"
    from anomaly_seg_ros.model.sml_stats import save_sml_stats

    save_sml_stats(stats, [f"class{i}" for i in range(19)], np.zeros(19), np.ones(19))
    assert main([*command, "--sml-stats", str(stats), "--out", str(out)]) == 0
    assert (
        len(json.loads(out.with_suffix(".json").read_text())["graph_refinement"]["sml_mean"]) == 19
    )
