"""``anomaly-seg check-engine``: does the deployed backend agree with ONNX Runtime?

Runs the same preprocessed frames through ONNX Runtime on the CPU (the reference) and
through a candidate — a TensorRT engine, TensorRT from the ONNX (cache), or PyTorch on
CUDA — and reports label agreement and absolute-error percentiles of the summary maps
and anomaly scores (:mod:`anomaly_seg_ros.deploy.parity`). With ``--polygraphy`` it also
runs NVIDIA Polygraphy's comparator on the engine for a second, independent opinion.
Exits 1 when the agreement is below ``--min-agreement`` or an output is not finite.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from anomaly_seg_ros.backends import InferenceBackend, create_backend
from anomaly_seg_ros.deploy.parity import ParityAccumulator, ParityReport
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.model.sidecar import ModelInfo, load_model_info
from anomaly_seg_ros.model.summary import INPUT_NAME
from anomaly_seg_ros.pipeline.preprocess import to_network_input

LOGGER = logging.getLogger(__name__)

CANDIDATES = ("tensorrt", "torch-cuda", "torch-cpu", "onnxruntime")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check-engine",
        help="compare a TensorRT engine (or PyTorch CUDA) with ONNX Runtime on sample frames",
        description="Run sample frames through ONNX Runtime (reference) and a deployed "
        "backend; report label agreement and error percentiles of maps and scores.",
    )
    parser.add_argument("model", type=Path, help="exported ONNX model (sidecar beside it)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--engine", type=Path, help="a built .engine (with its .engine.json)")
    which.add_argument("--backend", choices=CANDIDATES, default="tensorrt", help="candidate")
    parser.add_argument("--checkpoint", type=Path, help="torch .pt (default: MODEL with .pt)")
    parser.add_argument("--images", nargs="+", type=Path, help="image files or folders")
    parser.add_argument("--frames", type=int, default=8, help="at most this many frames")
    parser.add_argument("--cache-dir", type=Path, help="engine cache folder (tensorrt)")
    parser.add_argument("--min-agreement", type=float, default=99.0, help="percent of pixels")
    parser.add_argument("--polygraphy", action="store_true", help="also run Polygraphy")
    parser.add_argument("--atol", type=float, default=0.05, help="Polygraphy absolute tol.")
    parser.add_argument("--rtol", type=float, default=0.05, help="Polygraphy relative tol.")
    parser.set_defaults(func=run)


def sample_frames(args: argparse.Namespace, info: ModelInfo) -> list[np.ndarray]:
    """Preprocessed (1, 3, H, W) float32 inputs from ``--images``, else synthetic scenes.

    Synthetic frames (smooth colour gradients with blocks) exercise the numerics but not
    the decision boundaries of real scenes, so prefer real images.
    """
    if args.frames < 1:
        raise ConfigError("--frames must be at least 1")
    if args.images:
        from anomaly_seg_ros.commands.detect import list_images
        from anomaly_seg_ros.io.image_files import read_image_file

        paths = list_images(args.images)[: args.frames]
        return [to_network_input(read_image_file(path), info) for path in paths]
    LOGGER.warning("no --images given: comparing on synthetic frames; real images are better")
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(args.frames):
        rows = np.linspace(0, 255, info.input_height)[:, None, None]
        cols = np.linspace(0, 255, info.input_width)[None, :, None]
        rgb = (rows * rng.uniform(0, 1, 3) + cols * rng.uniform(0, 1, 3)) / 2
        height, width = info.input_height, info.input_width
        for _block in range(6):
            top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
            rgb[top : top + height // 4, left : left + width // 4] = rng.uniform(0, 255, 3)
        frames.append(to_network_input(rgb.astype(np.uint8), info))
    return frames


def create_candidate(args: argparse.Namespace, info: ModelInfo) -> InferenceBackend:
    """The backend under test, as chosen by ``--engine`` / ``--backend``."""
    if args.engine is not None:
        return create_backend("tensorrt", args.engine, info)
    if args.backend == "tensorrt":
        return create_backend("tensorrt", args.model, info, cache_dir=args.cache_dir)
    if args.backend.startswith("torch"):
        checkpoint = args.checkpoint or args.model.with_suffix(".pt")
        device = "cuda" if args.backend == "torch-cuda" else "cpu"
        return create_backend("torch", checkpoint, info, device=device)
    return create_backend("onnxruntime", args.model, info, providers=["CPUExecutionProvider"])


def compare(
    reference: InferenceBackend, candidate: InferenceBackend, frames: list[np.ndarray]
) -> ParityReport:
    """Run every frame through both backends and accumulate the differences."""
    accumulator = ParityAccumulator()
    for index, frame in enumerate(frames):
        accumulator.add(reference.infer(frame), candidate.infer(frame))
        LOGGER.debug("frame %d/%d compared", index + 1, len(frames))
    return accumulator.report()


def run(args: argparse.Namespace) -> int:
    info = load_model_info(args.model)
    frames = sample_frames(args, info)
    reference = create_backend("onnxruntime", args.model, info, providers=["CPUExecutionProvider"])
    with reference, create_candidate(args, info) as candidate:
        LOGGER.info("reference: %s", reference.describe())
        LOGGER.info("candidate: %s", candidate.describe())
        report = compare(reference, candidate, frames)
    for line in report.lines():
        LOGGER.info("%s", line)
    passed = report.label_agreement >= args.min_agreement
    nonfinite = sum(int(stats["nonfinite"]) for stats in report.errors.values())
    if args.polygraphy:
        passed &= run_polygraphy(args, frames)
    if nonfinite:
        LOGGER.error(
            "%d non-finite value(s) in the candidate's outputs (fp16 overflow?)", nonfinite
        )
    if not passed or nonfinite:
        LOGGER.error("parity check FAILED (need ≥ %.2f %% label agreement)", args.min_agreement)
        return 1
    LOGGER.info("parity check passed")
    return 0


def run_polygraphy(args: argparse.Namespace, frames: list[np.ndarray]) -> bool:
    """Polygraphy's own comparison of the engine with ONNX Runtime (needs an engine).

    :return: whether Polygraphy judged every output within ``--atol``/``--rtol``.
    :raises ConfigError: no engine given, or Polygraphy is not installed.
    """
    if args.engine is None:
        raise ConfigError("--polygraphy compares a TensorRT engine: pass --engine")
    try:
        from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx
        from polygraphy.backend.trt import EngineFromBytes, TrtRunner
        from polygraphy.comparator import Comparator, CompareFunc
    except ImportError as error:
        raise ConfigError(f"--polygraphy needs `pip install polygraphy` ({error})") from error
    runners: list[Any] = [
        OnnxrtRunner(SessionFromOnnx(str(args.model), providers=["CPUExecutionProvider"])),
        TrtRunner(EngineFromBytes(args.engine.read_bytes())),
    ]
    feeds = [{INPUT_NAME: frame} for frame in frames]
    results = Comparator.run(runners, data_loader=feeds)
    compare_func = CompareFunc.simple(atol=args.atol, rtol=args.rtol)
    accuracy = Comparator.compare_accuracy(results, compare_func=compare_func)
    LOGGER.info("polygraphy: %s", "passed" if accuracy else "FAILED")
    return bool(accuracy)
