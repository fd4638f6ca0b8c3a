"""Build TensorRT engines from the exported ONNX (TensorRT 10.3 on JetPack 6, and 11.x).

The network is *strongly typed*: every tensor's type comes from the ONNX graph, so the
precision is decided at export (an fp16 graph gives an fp16 engine; Q/DQ nodes give INT8)
and no BuilderFlag.FP16/INT8 or calibrator is used — TensorRT 11 removed them, and on 11
the STRONGLY_TYPED flag is accepted and ignored, so the same code serves both.

Together with :mod:`anomaly_seg_ros.backends.tensorrt` this is the TensorRT layer: the
only two modules that import tensorrt, both reached only when TensorRT is chosen.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import tensorrt as trt

from anomaly_seg_ros.atomic import atomic_write_bytes
from anomaly_seg_ros.deploy import cuda_runtime
from anomaly_seg_ros.deploy.engine_cache import (
    CACHE_DIR_ENV,
    EngineResult,
    Progress,
    cached_engine_path,
    ensure_engine,
)
from anomaly_seg_ros.deploy.engine_key import EngineKey, graph_precision, sha256_file
from anomaly_seg_ros.errors import BackendError, ModelError
from anomaly_seg_ros.model.sidecar import ModelInfo, load_model_info
from anomaly_seg_ros.model.summary import INPUT_NAME, OUTPUT_NAMES

if not hasattr(trt, "Builder"):  # e.g. only type stubs or a broken install on the path
    raise ImportError("the tensorrt module has no Builder: install the TensorRT Python wheel")

LOGGER = logging.getLogger(__name__)

DEFAULT_WORKSPACE_BYTES = 4 << 30

_SEVERITY_LEVELS = {
    trt.ILogger.Severity.INTERNAL_ERROR: logging.CRITICAL,
    trt.ILogger.Severity.ERROR: logging.ERROR,
    trt.ILogger.Severity.WARNING: logging.WARNING,
    trt.ILogger.Severity.INFO: logging.DEBUG,  # TensorRT's INFO is chatty
    trt.ILogger.Severity.VERBOSE: logging.DEBUG,
}


class TensorRTLogger(trt.ILogger):
    """Routes TensorRT's messages into Python logging (logger ``tensorrt``)."""

    def __init__(self) -> None:
        trt.ILogger.__init__(self)
        self._log = logging.getLogger("tensorrt")

    def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
        self._log.log(_SEVERITY_LEVELS.get(severity, logging.INFO), "%s", msg)


class BuildProgress(trt.IProgressMonitor):
    """Logs the builder's top-level phases, so a minutes-long build shows it is alive."""

    def __init__(self, report: Progress) -> None:
        trt.IProgressMonitor.__init__(self)
        self._report = report

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        if not parent_phase:
            self._report(f"TensorRT build phase: {phase_name} ({num_steps} steps)")

    def step_complete(self, phase_name: str, step: int) -> bool:
        return True  # never cancel the build

    def phase_finish(self, phase_name: str) -> None:
        LOGGER.debug("TensorRT build phase finished: %s", phase_name)


#: One logger for every builder and runtime of the process, as TensorRT recommends.
TRT_LOGGER = TensorRTLogger()


def engine_key(onnx_path: Path, info: ModelInfo, device: int = 0) -> EngineKey:
    """The cache key for building ``onnx_path`` on ``device`` with this TensorRT."""
    gpu_name, capability = cuda_runtime.gpu_identity(device)
    return EngineKey(
        tensorrt_version=trt.__version__,
        gpu_name=gpu_name,
        compute_capability=capability,
        precision=graph_precision(onnx_path, info.precision),
        input_shape=(1, 3, info.input_height, info.input_width),
        onnx_sha256=sha256_file(onnx_path),
    )


def build_serialized_engine(
    onnx_path: Path,
    info: ModelInfo,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    timing_cache: Path | None = None,
    progress: Progress | None = None,
) -> bytes:
    """Parse ``onnx_path`` into a strongly-typed network and build a serialized engine.

    :param workspace_bytes: limit of the builder's scratch memory (tactic workspace).
    :param timing_cache: file to load tactic timings from and save them to; reusing it
        makes rebuilds of similar graphs on the same GPU much faster.
    :raises ModelError: the ONNX does not parse or does not fit the sidecar.
    :raises BackendError: TensorRT could not build the engine (see its logged errors).
    """
    report = progress or LOGGER.info
    builder = trt.Builder(TRT_LOGGER)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, TRT_LOGGER)
    # parse_from_file (not parse(bytes)) resolves external weight files next to the model.
    if not parser.parse_from_file(str(onnx_path)):
        errors = [_describe_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        for message in errors:
            LOGGER.error("ONNX parser: %s", message)
        raise ModelError(
            f"TensorRT cannot parse {onnx_path} ({len(errors)} error(s)):\n  "
            + "\n  ".join(errors)
            + "\nRe-export the model with `anomaly-seg export` for this TensorRT version."
        )
    config = builder.create_builder_config()
    _fix_input_shape(builder, network, config, info, onnx_path)
    _check_outputs(network, onnx_path)
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    # TensorRT keeps only a raw pointer: hold the monitor until the build is over.
    monitor = BuildProgress(report)
    config.progress_monitor = monitor
    if timing_cache is not None:
        _load_timing_cache(config, timing_cache)
    # The stubs say IHostMemory, but TensorRT returns None when the build fails.
    serialized: trt.IHostMemory | None = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(
            f"TensorRT failed to build an engine from {onnx_path}; see the TensorRT errors "
            "logged above (a larger --workspace-gib can help)"
        )
    if timing_cache is not None:
        atomic_write_bytes(timing_cache, memoryview(config.get_timing_cache().serialize()))
        report(f"timing cache saved to {timing_cache}")
    return bytes(memoryview(serialized))


def prepare_engine(
    model_path: str | Path,
    info: ModelInfo | None = None,
    *,
    engine_path: Path | None = None,
    cache_dir: Path | None = None,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    timing_cache: Path | None = None,
    device: int = 0,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> EngineResult:
    """Load the cached engine of ONNX ``model_path``, or build and cache it.

    This is also the ``build_only`` step of an install: call it and exit.

    :param engine_path: exact engine file; default: keyed name under ``cache_dir``.
    :param cache_dir: engine cache folder (default :func:`~.engine_cache.default_cache_dir`).
    :raises ModelError: missing ONNX/sidecar, or an ONNX TensorRT cannot parse.
    :raises BackendError: no GPU, the build failed, or the cache is not writable.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelError(f"ONNX model {model_path} not found")
    info = info or load_model_info(model_path)
    cuda_runtime.use_device(device)
    key = engine_key(model_path, info, device)
    target = engine_path or cached_engine_path(model_path, key, cache_dir)
    settings = {"onnx_path": str(model_path.resolve()), "workspace_bytes": int(workspace_bytes)}

    def build() -> bytes:
        return build_serialized_engine(model_path, info, workspace_bytes, timing_cache, progress)

    try:
        return ensure_engine(
            target, key, build, rebuild=rebuild, extra_metadata=settings, progress=progress
        )
    except OSError as error:
        raise BackendError(
            f"cannot use the engine cache at {target.parent} ({error}); point "
            f"${CACHE_DIR_ENV} or the cache_dir option at a writable folder"
        ) from error


def dims(shape: trt.Dims) -> tuple[int, ...]:
    """A TensorRT ``Dims`` as a tuple of ints (-1 marks a dynamic size)."""
    return tuple(int(shape[axis]) for axis in range(len(shape)))


def _describe_parser_error(error: Any) -> str:
    """One line per ONNX parser error: node, operator, description, code."""
    node = f"node {error.node()}"
    for accessor in ("node_name", "node_operator"):  # added in TensorRT 10
        if hasattr(error, accessor):
            node += f" {getattr(error, accessor)()}"
    return f"{node}: {error.desc()} [{error.code()}]"


def _fix_input_shape(
    builder: trt.Builder,
    network: trt.INetworkDefinition,
    config: trt.IBuilderConfig,
    info: ModelInfo,
    onnx_path: Path,
) -> None:
    """Pin the input to the sidecar's static (1, 3, H, W), via a profile if it is dynamic."""
    wanted = (1, 3, info.input_height, info.input_width)
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    if [tensor.name for tensor in inputs] != [INPUT_NAME]:
        raise ModelError(
            f"{onnx_path}: inputs {[tensor.name for tensor in inputs]}, expected [{INPUT_NAME!r}]"
        )
    shape = dims(inputs[0].shape)
    if len(shape) != 4 or any(size not in (-1, want) for size, want in zip(shape, wanted)):
        raise ModelError(f"{onnx_path}: input shape {shape} does not fit the sidecar's {wanted}")
    if -1 in shape:
        profile = builder.create_optimization_profile()
        static = trt.Dims(list(wanted))
        profile.set_shape(INPUT_NAME, static, static, static)
        config.add_optimization_profile(profile)


def _check_outputs(network: trt.INetworkDefinition, onnx_path: Path) -> None:
    names = {network.get_output(i).name for i in range(network.num_outputs)}
    missing = [name for name in OUTPUT_NAMES if name not in names]
    if missing:
        raise ModelError(
            f"{onnx_path}: outputs {missing} missing; export the model with its anomaly head"
        )


def _load_timing_cache(config: trt.IBuilderConfig, path: Path) -> None:
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        # A cache from another GPU or TensorRT version: start a fresh one.
        LOGGER.warning("timing cache %s does not fit this GPU/TensorRT; starting a new one", path)
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
