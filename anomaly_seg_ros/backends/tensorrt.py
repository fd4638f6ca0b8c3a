"""TensorRT backend: the exported graph as an engine, inputs and outputs in GPU memory.

Per frame: one host→device copy of the image from a pinned buffer, ``execute_async_v3``
on a private stream, device→host copies of the five small summary maps (not the logits),
one stream synchronization. Every CUDA call is checked (:mod:`..deploy.cuda_runtime`).

Give it the ONNX (the engine is built on first use and cached, see
:mod:`anomaly_seg_ros.deploy.engine_cache`) or a ``.engine`` built by
``anomaly-seg build-engine`` together with its ``.engine.json`` metadata.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import tensorrt as trt

from anomaly_seg_ros.backends.base import InferenceBackend
from anomaly_seg_ros.deploy import cuda_runtime
from anomaly_seg_ros.deploy.engine_cache import read_verified_engine
from anomaly_seg_ros.deploy.engine_key import EngineKey
from anomaly_seg_ros.deploy.trt_builder import (
    DEFAULT_WORKSPACE_BYTES,
    TRT_LOGGER,
    dims,
    prepare_engine,
)
from anomaly_seg_ros.errors import BackendError, ConfigError, ModelError
from anomaly_seg_ros.model.sidecar import ModelInfo, load_model_info
from anomaly_seg_ros.model.summary import INPUT_NAME, LogitSummary

LOGGER = logging.getLogger(__name__)

#: Engine I/O types this backend can stage in host memory.
_NUMPY_DTYPES = {
    trt.DataType.FLOAT: np.float32,
    trt.DataType.HALF: np.float16,
    trt.DataType.INT8: np.int8,
    trt.DataType.UINT8: np.uint8,
    trt.DataType.INT32: np.int32,
    trt.DataType.INT64: np.int64,
    trt.DataType.BOOL: np.bool_,
}

_OPTIONS = ("device", "cache_dir", "workspace_bytes", "timing_cache", "rebuild", "profile")


class TensorRTBackend(InferenceBackend):
    """Runs a deserialized engine; safe to call from any one thread at a time.

    :param engine_data: the serialized engine (already verified against its metadata).
    :param device: CUDA device index.
    :param profile: time H2D, network and D2H with CUDA events into :attr:`last_timings`.
    """

    name = "tensorrt"

    def __init__(
        self,
        info: ModelInfo,
        model_path: Path,
        engine_data: bytes,
        device: int = 0,
        profile: bool = False,
    ) -> None:
        super().__init__(info, model_path)
        self.device = device
        self.last_timings: dict[str, float] = {}
        self._lock = threading.Lock()
        self._device_buffers: dict[str, cuda_runtime.DeviceBuffer] = {}
        self._host_buffers: dict[str, cuda_runtime.PinnedBuffer] = {}
        self._events: list[cuda_runtime.Event] = []
        self._stream: cuda_runtime.Stream | None = None
        self._context: trt.IExecutionContext | None = None
        self._engine: trt.ICudaEngine | None = None
        cuda_runtime.use_device(device)
        self._gpu_name = cuda_runtime.gpu_identity(device)[0]
        self._runtime: trt.Runtime | None = trt.Runtime(TRT_LOGGER)
        try:
            self._engine = self._runtime.deserialize_cuda_engine(engine_data)
            if self._engine is None:
                raise BackendError(
                    f"TensorRT {trt.__version__} cannot load the engine for {model_path}; "
                    "rebuild it (`anomaly-seg build-engine MODEL.onnx --rebuild`)"
                )
            self._allocate(self._engine, profile)
        except BaseException:
            self.close()
            raise

    def _allocate(self, engine: trt.ICudaEngine, profile: bool) -> None:
        """Find the I/O tensors by name, allocate their buffers and bind the addresses."""
        wanted_input = (1, 3, self.info.input_height, self.info.input_width)
        modes = {}
        for index in range(engine.num_io_tensors):
            tensor = engine.get_tensor_name(index)
            modes[tensor] = engine.get_tensor_mode(tensor)
        inputs = [name for name, mode in modes.items() if mode == trt.TensorIOMode.INPUT]
        outputs = self.info.output_names
        missing = [name for name in outputs if modes.get(name) != trt.TensorIOMode.OUTPUT]
        if inputs != [INPUT_NAME] or missing:
            raise ModelError(
                f"engine for {self.model_path} has inputs {inputs} and lacks outputs {missing}; "
                f"expected input {INPUT_NAME!r} and outputs {list(outputs)}: re-export"
            )
        self._context = engine.create_execution_context()
        if self._context is None:
            raise BackendError("TensorRT could not create an execution context (GPU memory?)")
        if -1 in dims(engine.get_tensor_shape(INPUT_NAME)):
            if not self._context.set_input_shape(INPUT_NAME, wanted_input):
                raise ModelError(f"engine does not accept the sidecar's input {wanted_input}")
        self.check_output_shapes(
            {name: dims(self._context.get_tensor_shape(name)) for name in outputs},
            str(self.model_path),
        )
        self._stream = cuda_runtime.Stream()
        for tensor in modes:
            shape = dims(self._context.get_tensor_shape(tensor))
            if tensor == INPUT_NAME and shape != wanted_input:
                raise ModelError(f"engine input shape {shape} != sidecar's {wanted_input}")
            dtype = numpy_dtype(engine.get_tensor_dtype(tensor))
            nbytes = int(np.prod(shape)) * dtype.itemsize
            self._device_buffers[tensor] = cuda_runtime.DeviceBuffer(nbytes)
            # Outputs the sidecar does not name get device memory but are never copied back.
            if tensor == INPUT_NAME or tensor in outputs:
                self._host_buffers[tensor] = cuda_runtime.PinnedBuffer(shape, dtype)
            if not self._context.set_tensor_address(tensor, self._device_buffers[tensor].ptr):
                raise BackendError(f"TensorRT refused the device address of tensor {tensor!r}")
        if profile:
            self._events = [cuda_runtime.Event() for _ in range(4)]

    def input_buffer(self) -> np.ndarray | None:
        """The pinned input array (1, 3, H, W); preprocessing into it saves one host copy."""
        return self._host_buffers[INPUT_NAME].array

    def infer(self, image: np.ndarray) -> LogitSummary:
        self.check_input(image)
        with self._lock:
            if self._context is None or self._stream is None:
                raise BackendError("the TensorRT backend is closed")
            # The calling thread (e.g. a ROS worker) needs the primary context current.
            cuda_runtime.use_device(self.device)
            staged = self._host_buffers[INPUT_NAME].array
            if image.ctypes.data != staged.ctypes.data or image.dtype != staged.dtype:
                np.copyto(staged, image, casting="same_kind")
            stream, events = self._stream, self._events
            if events:
                stream.record(events[0])
            stream.copy_to_device(self._device_buffers[INPUT_NAME], self._host_buffers[INPUT_NAME])
            if events:
                stream.record(events[1])
            if not self._context.execute_async_v3(stream.handle):
                raise BackendError("TensorRT execute_async_v3 failed; see the TensorRT log")
            if events:
                stream.record(events[2])
            for output in self.info.output_names:
                stream.copy_to_host(self._host_buffers[output], self._device_buffers[output])
            if events:
                stream.record(events[3])
            stream.synchronize()
            # Copies: the pinned buffers are overwritten by the next frame.
            maps = {name: self._host_buffers[name].array.copy() for name in self.info.output_names}
            if events:
                self.last_timings = {
                    stage: events[i + 1].milliseconds_since(events[i]) / 1000.0
                    for i, stage in enumerate(("h2d", "network", "d2h"))
                }
        return LogitSummary.from_outputs(maps)

    def close(self) -> None:
        """Free the context, engine, buffers, events and stream; safe to call twice."""
        with self._lock:
            failures: list[BackendError] = []
            try:
                cuda_runtime.use_device(self.device)
                if self._stream is not None:
                    self._stream.synchronize()
            except BackendError as error:
                failures.append(error)
            # TensorRT objects go first: the context still refers to the device buffers.
            self._context = self._engine = self._runtime = None
            resources: list[Any] = [*self._device_buffers.values(), *self._host_buffers.values()]
            for resource in resources:
                try:
                    resource.free()
                except BackendError as error:
                    failures.append(error)
            for event in self._events:
                try:
                    event.destroy()
                except BackendError as error:
                    failures.append(error)
            self._device_buffers, self._host_buffers, self._events = {}, {}, []
            if self._stream is not None:
                stream, self._stream = self._stream, None
                try:
                    stream.destroy()
                except BackendError as error:
                    failures.append(error)
        for failure in failures:
            LOGGER.error("while closing the TensorRT backend: %s", failure)
        if failures:
            raise failures[0]

    def describe(self) -> str:
        return (
            f"tensorrt {trt.__version__} on {self._gpu_name} (device {self.device}), "
            f"{self.info.precision}, {self.info.input_height}x{self.info.input_width}"
        )


def numpy_dtype(data_type: trt.DataType) -> np.dtype[Any]:
    """The numpy dtype of a TensorRT I/O tensor type.

    :raises ModelError: a type without a numpy equivalent (e.g. bf16 at the graph's edge).
    """
    if data_type not in _NUMPY_DTYPES:
        raise ModelError(f"engine I/O type {data_type} is not supported; export fp32/fp16 I/O")
    return np.dtype(_NUMPY_DTYPES[data_type])


def create(model_path: Path, info: ModelInfo | None = None, **options: Any) -> TensorRTBackend:
    """Factory used by :func:`anomaly_seg_ros.backends.create_backend`.

    :param model_path: ``.onnx`` (engine built/cached on demand) or ``.engine``.
    :param options: ``device`` (0), ``cache_dir``, ``workspace_bytes``, ``timing_cache``,
        ``rebuild`` (False), ``profile`` (False).
    :raises ConfigError: an unknown option.
    :raises ModelError: the sidecar is missing, or a ``.engine`` has no valid metadata.
    :raises BackendError: no GPU, or the engine cannot be built or loaded.
    """
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown tensorrt option(s) {unknown}; valid: {', '.join(_OPTIONS)}")
    model_path = Path(model_path)
    info = info or load_model_info(model_path)
    device = int(options.get("device", 0))
    if model_path.suffix == ".engine":
        data = _load_prebuilt(model_path, info, device)
    else:
        data = prepare_engine(
            model_path,
            info,
            cache_dir=_optional_path(options.get("cache_dir")),
            workspace_bytes=int(options.get("workspace_bytes", DEFAULT_WORKSPACE_BYTES)),
            timing_cache=_optional_path(options.get("timing_cache")),
            device=device,
            rebuild=bool(options.get("rebuild", False)),
        ).data
    return TensorRTBackend(info, model_path, data, device, bool(options.get("profile", False)))


def _load_prebuilt(engine_path: Path, info: ModelInfo, device: int) -> bytes:
    """Read a ``.engine`` only if its metadata fits this TensorRT, GPU and input shape."""
    cuda_runtime.use_device(device)
    gpu_name, capability = cuda_runtime.gpu_identity(device)
    expected = EngineKey(
        tensorrt_version=trt.__version__,
        gpu_name=gpu_name,
        compute_capability=capability,
        precision=info.precision,
        input_shape=(1, 3, info.input_height, info.input_width),
        onnx_sha256="",
    )
    # Without the ONNX its hash is unknown; precision may carry "+int8" from Q/DQ nodes.
    data, reason = read_verified_engine(engine_path, expected, ignore=("onnx_sha256", "precision"))
    if data is None:
        raise ModelError(
            f"refusing to load {engine_path}: {reason}. Rebuild it on this machine with "
            "`anomaly-seg build-engine MODEL.onnx --out ...`, or give the node the ONNX"
        )
    return data


def _optional_path(value: object) -> Path | None:
    return None if value in (None, "") else Path(str(value))
