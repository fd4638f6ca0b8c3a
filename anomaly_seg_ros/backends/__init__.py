"""Inference backends behind one interface; each heavy runtime is imported only when chosen.

``create_backend("onnxruntime" | "tensorrt" | "torch" | "auto", model_path)``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path

from anomaly_seg_ros.backends.base import InferenceBackend
from anomaly_seg_ros.errors import BackendError, ConfigError, ModelError
from anomaly_seg_ros.model.sidecar import ModelInfo

__all__ = [
    "BACKEND_CHOICES",
    "BACKEND_FACTORIES",
    "InferenceBackend",
    "create_backend",
    "resolve_backend",
]

LOGGER = logging.getLogger(__name__)

#: backend name → "module:factory"; the module is imported only when that backend is chosen.
BACKEND_FACTORIES: dict[str, str] = {
    "onnxruntime": "anomaly_seg_ros.backends.onnxruntime:create",
    "tensorrt": "anomaly_seg_ros.backends.tensorrt:create",
    "torch": "anomaly_seg_ros.backends.torch:create",
}
#: every backend name a user may give (CLI ``--backend``, node parameter ``backend``):
#: the one definition, imported everywhere.
BACKEND_CHOICES: tuple[str, ...] = ("auto", *BACKEND_FACTORIES)


def _tensorrt_usable() -> bool:
    """TensorRT and cuda-python are importable as real modules.

    A namespace package (e.g. type stubs installed without the runtime) has no origin and
    does not count.
    """
    for name in ("tensorrt", "cuda"):
        spec = importlib.util.find_spec(name)
        if spec is None or (name == "tensorrt" and spec.origin is None):
            return False
    return True


def resolve_backend(name: str, model_path: str | Path) -> str:
    """Turn ``auto`` into a concrete backend name.

    ``auto`` picks TensorRT when tensorrt and cuda-python are installed, else ONNX Runtime
    for ``.onnx`` models, else torch for ``.pt`` checkpoints.
    """
    if name not in BACKEND_CHOICES:
        raise ConfigError(f"unknown backend {name!r}; valid: {', '.join(BACKEND_CHOICES)}")
    if name != "auto":
        return name
    suffix = Path(model_path).suffix
    if suffix == ".pt":
        return "torch"
    if _tensorrt_usable():
        return "tensorrt"
    return "onnxruntime"


def create_backend(
    name: str, model_path: str | Path, info: ModelInfo | None = None, **options: object
) -> InferenceBackend:
    """Create a backend for ``model_path``.

    :param name: ``auto``, ``onnxruntime``, ``tensorrt`` or ``torch``.
    :param model_path: ``.onnx`` (all backends) or ``.pt`` checkpoint (torch).
    :param info: the model's sidecar; read from beside the model when omitted.
    :param options: backend-specific keyword options (e.g. ``device``, ``cache_dir``).
    :raises ModelError: the model file is missing or does not fit its sidecar.
    :raises BackendError: the runtime is not installed or fails to start.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelError(f"model file {model_path} not found")
    concrete = resolve_backend(name, model_path)
    module_name, factory_name = BACKEND_FACTORIES[concrete].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BackendError(
            f"backend {concrete!r} is not available: {error}. Install its runtime or choose "
            f"another backend ({', '.join(BACKEND_CHOICES)})"
        ) from error
    factory: Callable[..., InferenceBackend] = getattr(module, factory_name)
    backend = factory(model_path, info, **options)
    LOGGER.info("backend %s for %s", backend.describe(), model_path)
    return backend
