"""What a TensorRT engine depends on, as a comparable, hashable key.

An engine is only valid for the TensorRT version that built it, the GPU model (name and
compute capability) it was tuned on, and the exact graph, precision and input shape.
Nothing here imports tensorrt or cuda: the values are gathered by the caller (see
:mod:`anomaly_seg_ros.deploy.trt_builder`) so that this logic is testable anywhere.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from anomaly_seg_ros.errors import ModelError

#: ONNX operators of explicit (Q/DQ) quantization; their presence makes an INT8 engine.
QDQ_OPERATORS = frozenset({"QuantizeLinear", "DequantizeLinear"})

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine's validity depends on.

    :param tensorrt_version: ``tensorrt.__version__`` of the builder, e.g. ``"10.3.0.30"``.
    :param gpu_name: the CUDA device name, e.g. ``"Orin"`` or ``"NVIDIA H100 80GB HBM3"``.
    :param compute_capability: ``"major.minor"``, e.g. ``"8.7"``.
    :param precision: ``"fp32"``, ``"fp16"``, optionally ``+int8`` for Q/DQ graphs.
    :param input_shape: the static NCHW input shape.
    :param onnx_sha256: hex SHA-256 of the ONNX file.
    """

    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    input_shape: tuple[int, ...]
    onnx_sha256: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EngineKey:
        """Inverse of :meth:`to_json`.

        :raises ValueError: a field is missing or has the wrong type.
        """
        try:
            values = {field.name: data[field.name] for field in fields(cls)}
            values["input_shape"] = tuple(int(size) for size in values["input_shape"])
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed engine key {data!r}: {error!r}") from error
        for name, value in values.items():
            if name != "input_shape" and not isinstance(value, str):
                raise ValueError(f"engine key field {name} must be a string, got {value!r}")
        return cls(**values)

    def digest(self, length: int = 16) -> str:
        """Short hex digest of the whole key; it goes into the cached engine's file name."""
        text = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]

    def mismatches(self, other: EngineKey, ignore: tuple[str, ...] = ()) -> list[str]:
        """Human-readable differences ``field: other != self``, skipping ``ignore``."""
        differences = []
        for field in fields(self):
            if field.name in ignore:
                continue
            wanted, found = getattr(self, field.name), getattr(other, field.name)
            if wanted != found:
                differences.append(f"{field.name}: engine has {found!r}, need {wanted!r}")
        return differences


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks.

    :raises ModelError: the file cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(_HASH_CHUNK), b""):
                digest.update(chunk)
    except OSError as error:
        raise ModelError(f"cannot read {path} to hash it: {error}") from error
    return digest.hexdigest()


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """Hex SHA-256 of an in-memory buffer (a serialized engine)."""
    return hashlib.sha256(data).hexdigest()


def graph_precision(onnx_path: str | Path, body_precision: str) -> str:
    """The precision label of an exported graph.

    fp32/fp16 is decided at export and recorded in the sidecar (``body_precision``);
    explicit INT8 quantization shows as QuantizeLinear/DequantizeLinear nodes, which
    TensorRT honours in a strongly-typed network without any calibrator.

    :param onnx_path: the ONNX file (weights are not loaded).
    :param body_precision: ``ModelInfo.precision`` (``"fp32"`` or ``"fp16"``).
    :return: e.g. ``"fp16"`` or ``"fp16+int8"``.
    :raises ModelError: the file is not a readable ONNX model.
    """
    import onnx  # lazy: only deployment needs it
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except (OSError, DecodeError) as error:
        raise ModelError(f"{onnx_path}: not a readable ONNX model ({error})") from error
    operators = {node.op_type for node in model.graph.node}
    for function in model.functions:
        operators.update(node.op_type for node in function.node)
    return f"{body_precision}+int8" if operators & QDQ_OPERATORS else body_precision
