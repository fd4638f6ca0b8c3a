"""The optional int8 demo model: it loads, agrees with the fp32 model, and the script that
builds it quantizes a model end to end."""

import json

import numpy as np
import onnx
import pytest

from anomaly_seg_ros.config import config_from_params_file
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.model.bundled import default_model_path
from anomaly_seg_ros.model.sidecar import load_model_info
from demo.drive import DriveSpec, render_drive

FP32 = default_model_path()
INT8 = FP32.with_name(f"{FP32.stem}_int8.onnx")


@pytest.mark.skipif(not INT8.is_file(), reason="no int8 demo (python -m demo.model.quantize)")
def test_int8_demo_loads_and_agrees_with_fp32():
    info = load_model_info(INT8)
    assert info.input_size == load_model_info(FP32).input_size
    assert "static QDQ" in info.provenance["quantization"]["method"]
    ops = {node.op_type for node in onnx.load(str(INT8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    extra = sum(INT8.with_suffix(s).stat().st_size for s in (".onnx", ".json", ".params.yaml"))
    assert extra <= 15e6
    config = config_from_params_file(str(INT8.with_suffix(".params.yaml")))
    spec = DriveSpec(frames=1, height=info.input_height, width=info.input_width, seed=3)
    frame = next(render_drive(spec)).image
    with (
        Detector.from_path(FP32, config, "onnxruntime") as fp32,
        Detector.from_path(INT8, config, "onnxruntime") as int8,
    ):
        reference, quantized = fp32.detect(frame), int8.detect(frame)
    assert np.mean(reference.labels == quantized.labels) >= 0.97
    assert np.isfinite(quantized.score).all()
    figures = json.loads(INT8.with_suffix(".figures.json").read_text())
    assert figures["label_agreement"] >= 0.97


def test_quantize_script_quantizes_a_model(tiny_model, tmp_path, rng):
    pytest.importorskip("onnxruntime.quantization")
    from demo.model.quantize import quantize

    images = [rng.integers(0, 256, size=(64, 128, 3), dtype=np.uint8) for _ in range(2)]
    out = tmp_path / "tiny_int8.onnx"
    quantize(tiny_model, out, images)
    model = onnx.load(str(out))
    ops = [node.op_type for node in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    # The head stays float: the summary outputs keep their types.
    types = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    assert types["label"] == onnx.TensorProto.UINT8
    assert types["entropy"] == onnx.TensorProto.FLOAT
