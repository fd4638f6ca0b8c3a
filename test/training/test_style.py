"""Training-free style aligners and the ONNX style-model hook (real ONNX Runtime)."""

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from anomaly_seg_ros.errors import ConfigError, ModelError
from training.style import (
    STYLE_METHODS,
    OnnxStyleModel,
    create_style_aligner,
    fda_style,
    histogram_style,
    reinhard_style,
)


@pytest.fixture
def inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    # a bright, saturated object with texture; a dark, bluish, low-contrast scene
    obj = np.clip(rng.normal((200, 120, 60), 20, (60, 80, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((60, 80), bool)
    cv2.ellipse(mask.view(np.uint8), (40, 30), (35, 25), 0, 0, 360, 1, -1)
    scene = np.clip(rng.normal((100, 110, 130), 12, (120, 200, 3)), 0, 255).astype(np.uint8)
    return obj, mask, scene


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def test_reinhard_matches_scene_lab_statistics(inputs):
    obj, mask, scene = inputs
    styled = reinhard_style(obj, mask, scene)
    got, want = _lab(styled)[mask], _lab(scene).reshape(-1, 3)
    np.testing.assert_allclose(got.mean(0), want.mean(0), atol=1.0)
    np.testing.assert_allclose(got.std(0), want.std(0), atol=1.0)


def test_histogram_matches_scene_quantiles(inputs):
    obj, mask, scene = inputs
    styled = histogram_style(obj, mask, scene)
    for channel in range(3):
        got = np.percentile(styled[..., channel][mask], [10, 50, 90])
        want = np.percentile(scene[..., channel], [10, 50, 90])
        np.testing.assert_allclose(got, want, atol=2.0)
    # monotone mapping: the brightness order of object pixels is kept
    before, after = obj[..., 0][mask].astype(int), styled[..., 0][mask].astype(int)
    order = np.argsort(before, kind="stable")
    assert np.all(np.diff(after[order]) >= 0)


def test_fda_moves_mean_colour_and_keeps_structure(inputs):
    obj, mask, scene = inputs
    obj = obj.copy()
    obj[:, ::8] = obj[:, ::8] // 2  # stripes: structure carried by phase and high frequencies
    styled = fda_style(obj, mask, scene, beta=0.1)
    scene_mean = cv2.resize(scene, (80, 60), interpolation=cv2.INTER_AREA).mean((0, 1))
    object_mean = obj[mask].mean(0)
    # the DC term (the mean colour) lies in the swapped window; clipping to [0, 255] keeps
    # the result from reaching the scene mean exactly
    remaining = np.abs(styled[mask].mean(0) - scene_mean)
    assert np.all(remaining <= 0.1 * np.abs(object_mean - scene_mean) + 2.0)
    stripes = styled[:, ::8].astype(float).mean() - styled[:, 4::8].astype(float).mean()
    assert stripes < -10  # stripe columns stay darker than their neighbours
    assert np.array_equal(fda_style(obj, mask, scene, beta=0.0), obj)


def _style_onnx(path, static: bool) -> None:
    h, w = (32, 32) if static else ("h", "w")
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["scene", "axes"], ["scene_mean"], keepdims=1),
            helper.make_node("Add", ["object", "scene_mean"], ["sum"]),
            helper.make_node("Mul", ["sum", "half"], ["styled"]),
        ],
        "style",
        [
            helper.make_tensor_value_info("object", TensorProto.FLOAT, [1, 3, h, w]),
            helper.make_tensor_value_info("scene", TensorProto.FLOAT, [1, 3, "H", "W"]),
        ],
        [helper.make_tensor_value_info("styled", TensorProto.FLOAT, [1, 3, h, w])],
        [
            helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3]),
            helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@pytest.mark.parametrize("static", [False, True])
def test_onnx_hook_runs_external_model(inputs, tmp_path, static):
    obj, mask, scene = inputs
    path = tmp_path / "style.onnx"
    _style_onnx(path, static)
    aligner = create_style_aligner("onnx", model_path=path)
    assert isinstance(aligner, OnnxStyleModel)
    styled = aligner(obj, mask, scene)
    assert styled.shape == obj.shape and styled.dtype == np.uint8
    # the graph averages each object pixel with the scene's mean colour
    expected = (obj.astype(float) + scene.reshape(-1, 3).mean(0)) / 2
    tolerance = 2.0 if not static else 40.0  # static: 80x60 -> 32x32 -> 80x60 resampling
    assert np.abs(styled.astype(float) - expected).mean() < tolerance / 4
    assert np.abs(styled.astype(float) - expected).max() <= tolerance


def test_factory_and_errors(inputs, tmp_path):
    obj, mask, scene = inputs
    for method in STYLE_METHODS[:-1]:
        styled = create_style_aligner(method)(obj, mask, scene)
        assert styled.shape == obj.shape and styled.dtype == np.uint8
    assert create_style_aligner("none")(obj, mask, scene) is obj
    with pytest.raises(ConfigError, match="reinhard"):
        create_style_aligner("issa")
    with pytest.raises(ConfigError, match="model path"):
        create_style_aligner("onnx")
    with pytest.raises(ConfigError):
        create_style_aligner("fda", beta=0.9)
    with pytest.raises(ModelError, match="not found"):
        OnnxStyleModel(tmp_path / "missing.onnx")
