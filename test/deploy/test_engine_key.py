"""The engine cache key: hashing, comparison, and precision read from real ONNX files."""

import dataclasses
import hashlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from anomaly_seg_ros.deploy.engine_key import EngineKey, graph_precision, sha256_file
from anomaly_seg_ros.errors import ModelError

KEY = EngineKey(
    tensorrt_version="10.3.0.30",
    gpu_name="Orin",
    compute_capability="8.7",
    precision="fp16",
    input_shape=(1, 3, 512, 1024),
    onnx_sha256="ab" * 32,
)


def conv_model(path, dtype=TensorProto.FLOAT16, quantized=False):
    """A real 1-conv ONNX graph; with ``quantized``, Q/DQ nodes in front of the conv."""
    np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
    weight = numpy_helper.from_array(np.ones((2, 3, 1, 1), np_dtype), "weight")
    nodes, conv_input, initializers = [], "image", [weight]
    if quantized:
        scale = numpy_helper.from_array(np.array(0.05, np_dtype), "scale")
        zero = numpy_helper.from_array(np.array(0, np.int8), "zero")
        initializers += [scale, zero]
        nodes += [
            helper.make_node("QuantizeLinear", ["image", "scale", "zero"], ["image_q"]),
            helper.make_node("DequantizeLinear", ["image_q", "scale", "zero"], ["image_dq"]),
        ]
        conv_input = "image_dq"
    nodes.append(helper.make_node("Conv", [conv_input, "weight"], ["logits"]))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", dtype, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("logits", dtype, [1, 2, 4, 4])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_digest_is_stable_and_depends_on_every_field():
    assert KEY.digest() == EngineKey.from_json(KEY.to_json()).digest()
    assert len(KEY.digest()) == 16
    changes = {
        "tensorrt_version": "10.3.0.31",
        "gpu_name": "NVIDIA H100 80GB HBM3",
        "compute_capability": "9.0",
        "precision": "fp32",
        "input_shape": (1, 3, 1024, 2048),
        "onnx_sha256": "cd" * 32,
    }
    assert set(changes) == {field.name for field in dataclasses.fields(EngineKey)}
    digests = {
        dataclasses.replace(KEY, **{name: value}).digest() for name, value in changes.items()
    }
    assert len(digests) == len(changes) and KEY.digest() not in digests


def test_json_round_trip_and_rejects_malformed():
    assert EngineKey.from_json(KEY.to_json()) == KEY
    assert KEY.to_json()["input_shape"] == [1, 3, 512, 1024]
    missing = {k: v for k, v in KEY.to_json().items() if k != "gpu_name"}
    with pytest.raises(ValueError, match="malformed"):
        EngineKey.from_json(missing)
    with pytest.raises(ValueError, match="must be a string"):
        EngineKey.from_json({**KEY.to_json(), "tensorrt_version": 10})


def test_mismatches_name_each_differing_field():
    other = dataclasses.replace(KEY, tensorrt_version="11.0.0", gpu_name="Thor")
    differences = KEY.mismatches(other)
    assert len(differences) == 2
    assert "tensorrt_version: engine has '11.0.0', need '10.3.0.30'" in differences
    assert KEY.mismatches(other, ignore=("tensorrt_version", "gpu_name")) == []
    assert KEY.mismatches(KEY) == []


def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / "blob.bin"
    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)  # several read chunks
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    with pytest.raises(ModelError, match="cannot read"):
        sha256_file(tmp_path / "missing.onnx")


def test_graph_precision_follows_sidecar_and_qdq_nodes(tmp_path):
    plain = conv_model(tmp_path / "plain.onnx")
    quantized = conv_model(tmp_path / "qdq.onnx", TensorProto.FLOAT, quantized=True)
    assert graph_precision(plain, "fp16") == "fp16"
    assert graph_precision(quantized, "fp32") == "fp32+int8"


def test_graph_precision_rejects_non_onnx(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\xff\xff\xff not a protobuf")
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        graph_precision(garbage, "fp32")
