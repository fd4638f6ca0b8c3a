"""``anomaly-seg build-engine``: build (or verify) the TensorRT engine of an exported ONNX.

This is the ``build_only`` step of an installation on the car: it builds the engine into
the same cache the node reads (or to ``--out``), prints progress while TensorRT works for
minutes, and exits. Run again, it only verifies the cached engine and returns at once.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from anomaly_seg_ros.atomic import atomic_write_bytes
from anomaly_seg_ros.errors import BackendError
from anomaly_seg_ros.model.sidecar import load_model_info, sidecar_path

LOGGER = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "build-engine",
        help="build the TensorRT engine of an exported ONNX model (install-time build_only)",
        description="Build a strongly-typed TensorRT engine from an exported ONNX model and "
        "store it in the engine cache (or --out), with metadata that guards against loading "
        "it on another GPU or TensorRT version.",
    )
    parser.add_argument("model", type=Path, help="exported ONNX model (sidecar beside it)")
    parser.add_argument("--out", type=Path, help="engine file (default: the engine cache)")
    parser.add_argument("--cache-dir", type=Path, help="engine cache folder")
    parser.add_argument(
        "--workspace-gib", type=float, default=4.0, help="builder workspace limit (GiB)"
    )
    parser.add_argument("--timing-cache", type=Path, help="tactic timing cache to reuse/update")
    parser.add_argument("--device", type=int, default=0, help="CUDA device index")
    parser.add_argument("--rebuild", action="store_true", help="build even if cached and valid")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.workspace_gib <= 0:
        raise BackendError("--workspace-gib must be positive")
    info = load_model_info(args.model)
    try:
        from anomaly_seg_ros.deploy.trt_builder import prepare_engine
    except ImportError as error:
        raise BackendError(
            f"TensorRT is not usable here ({error}). Install the TensorRT Python wheel and "
            "cuda-python (see docs/tensorrt.md) on the machine with the target GPU"
        ) from error
    result = prepare_engine(
        args.model,
        info,
        engine_path=args.out,
        cache_dir=args.cache_dir,
        workspace_bytes=int(args.workspace_gib * 2**30),
        timing_cache=args.timing_cache,
        device=args.device,
        rebuild=args.rebuild,
    )
    if args.out is not None:
        copy_sidecar(args.model, args.out)
    state = "built" if result.built else "up to date"
    LOGGER.info("engine %s: %s", state, result.path)
    return 0


def copy_sidecar(model_path: Path, engine_path: Path) -> None:
    """Put the model sidecar beside a ``--out`` engine, so the engine loads on its own."""
    source, target = sidecar_path(model_path), sidecar_path(engine_path)
    if source.resolve() != target.resolve():
        atomic_write_bytes(target, source.read_bytes())
        LOGGER.info("sidecar copied to %s", target)
