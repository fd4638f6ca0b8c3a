"""The GPU check in one command: torch on CUDA (fp32, fp16), parity, latency; TensorRT too.

    python benchmarks/gpu.py                      # on the GPU machine, within ~8 minutes
    python benchmarks/gpu.py --device cpu --quick  # the same path on a CPU, in seconds

For the bundled model (``models/demo/demo.pt``) and a random-init DeepLabv3+ ResNet-101
(OS16) at 1024×2048, in fp32 and fp16 (fp16 on CUDA only), it prints:

* parity against the CPU path: the same frame through the torch backend on the CPU in
  fp32; labels agreeing (%) and the largest difference of max-logit and log-sum-exp
  relative to their spread (fp16 is expected to differ in the last bits, not in labels);
* latency, medians over ``--iterations`` frames after ``--warmup``: the network
  (``backend.infer``: upload, network, download), each host stage and the whole
  ``Detector.detect`` (plain settings, and every refinement: suppression, smoothing, VDE,
  on the host; then "in-graph": the same refinement run by the torch backend on the
  device after the head, the host only thresholding);
* the random-init network gets batch-norm statistics estimated on two random frames (as
  training would give it), so that its activations stay in float16's range like a trained
  model's; a map that still overflows is reported as NON-FINITE, not as a difference;
* TensorRT rows (fp16, fp32, and the refinement in the graph) when ``tensorrt`` and
  ``cuda.bindings`` import; their wheels may travel with the tree (``--wheels``).

What it needs beyond the machine's torch travels with the tree: numpy and any other wheel
it finds in ``--wheels`` (default ``benchmarks/gpu_wheels/``, git-ignored; fill it with
``pip download --only-binary=:all: --python-version 3.X --platform manylinux2014_x86_64
numpy -d benchmarks/gpu_wheels`` for the target's Python) are unpacked into a temporary
folder on the path; without OpenCV the host stages run on ``benchmarks/cv2_fallback.py``
(numpy + torch, the same semantics, not OpenCV's speed: the output says which ran).
ONNX Runtime and PyYAML are not on this path. A ``--budget`` (seconds, default 420) stops
starting new rows when spent, so the run ends within 8 minutes however slow the machine.
Exits 0 with one line where there is nothing to measure (no torch, no CUDA device).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BUNDLED_MODEL = REPO / "models" / "demo" / "demo.pt"
CLASS_NAMES = tuple(f"class{index}" for index in range(19))
CAMERA_SIZE = (1024, 2048)
QUICK_SIZE = (128, 256)
REFINED = {"boundary_suppression": True, "dilated_smoothing": True, "vde": True}
HOST_STAGES = ("preprocess", "score", "refine", "resize", "mask")
#: Time kept free for one TensorRT engine build (ResNet-101 at 1024x2048 takes minutes).
TENSORRT_BUILD_SEC = 150.0


def use_travelling_wheels(folder: Path, scratch: Path) -> list[str]:
    """Unpack the wheels in ``folder`` into ``scratch`` and put it first on the path (a
    wheel with compiled modules cannot be imported from its zip). Returns their names."""
    wheels = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(scratch)
    if wheels:
        sys.path.insert(0, str(scratch))
        importlib.invalidate_caches()
    return [wheel.name for wheel in wheels]


def use_opencv_or_fallback() -> str:
    """``opencv <version>``, or installs :mod:`cv2_fallback` as ``cv2``."""
    try:
        import cv2

        return f"opencv {cv2.__version__}"
    except ImportError:
        sys.path.insert(0, str(HERE))
        import cv2_fallback

        sys.modules["cv2"] = cv2_fallback
        return "no OpenCV: host stages on benchmarks/cv2_fallback.py (numpy + torch)"


class Budget:
    """Seconds left for starting new rows."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def spent(self, what: str, needs: float = 0.0) -> bool:
        """True (and says so) when fewer than ``needs`` seconds are left."""
        if time.monotonic() + needs < self.deadline:
            return False
        print(f"  {what}: skipped, the time budget is spent")
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SIZE} frames, 2 runs")
    parser.add_argument("--models", nargs="+", default=["bundled", "resnet101"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "fp16"])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for new rows")
    parser.add_argument("--wheels", type=Path, default=HERE / "gpu_wheels")
    parser.add_argument("--no-tensorrt", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.warmup = 2, 1
    budget = Budget(args.budget)
    with tempfile.TemporaryDirectory() as scratch:
        wheels = use_travelling_wheels(args.wheels, Path(scratch) / "wheels")
        try:
            import torch
        except ImportError:
            print("benchmarks/gpu.py: torch is not installed; nothing to measure")
            return 0
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            print("benchmarks/gpu.py: no CUDA GPU available; nothing to measure")
            return 0
        try:
            import numpy  # noqa: F401  (the package needs it: say so in one line)
        except ImportError:
            print(
                "benchmarks/gpu.py: numpy is missing; put its wheel for this Python in "
                f"{args.wheels} (see the docstring)"
            )
            return 1
        sys.path.insert(0, str(REPO))
        opencv = use_opencv_or_fallback()
        device = torch.device(args.device)
        gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        camera = QUICK_SIZE if args.quick else CAMERA_SIZE
        print(
            f"device {gpu}; torch {torch.__version__}; camera {camera[0]}x{camera[1]}; "
            f"{opencv}; travelling wheels: {', '.join(wheels) or 'none'}"
        )
        for model in args.models:
            if budget.spent(model):
                break
            run_model(model, camera, device, args, budget, Path(scratch))
    return 0


def run_model(
    model: str,
    camera: tuple[int, int],
    device: Any,
    args: argparse.Namespace,
    budget: Budget,
    scratch: Path,
) -> None:
    """Parity and latency of one model on ``device`` per precision, then TensorRT."""
    import numpy as np

    from anomaly_seg_ros.model.graph_refinement import GraphRefinement

    network, info = load_network(model, camera)
    size = info.input_size
    print(f"\n{model} {size[0]}x{size[1]} ({count_flops(network, size) / 2e9:.1f} GMAC)")
    rgb = np.random.default_rng(0).integers(0, 256, (*camera, 3), dtype=np.uint8)
    reference = None
    for precision in args.precisions:
        if precision == "fp16" and device.type != "cuda":
            print("  fp16: CUDA only (the torch backend runs fp32 on a CPU)")
            continue
        if budget.spent(f"torch {precision}"):
            return
        backend = torch_backend(network, info, str(device), precision == "fp16", scratch)
        with backend:
            if reference is None:
                reference = cpu_reference(network, info, rgb, scratch)
            parity = compare_summaries(reference, backend.infer(network_input(rgb, info)))
            print(f"  torch {precision}: {backend.describe()}; parity vs CPU fp32: {parity}")
            for config_name in ("plain", "refined"):
                print_row(
                    f"torch {precision}", config_name, measure(backend, rgb, config_name, args)
                )
        if budget.spent(f"torch {precision} in-graph"):
            return
        in_graph = replace(info, graph_refinement=GraphRefinement.from_config(refined_config()))
        with torch_backend(
            network, in_graph, str(device), precision == "fp16", scratch
        ) as backend:
            agreement = graph_against_host(backend.infer(network_input(rgb, info)))
            print(f"  torch {precision} in-graph: {agreement}")
            print_row(f"torch {precision}", "in-graph", measure(backend, rgb, "in-graph", args))
    if not args.no_tensorrt:
        run_tensorrt(network, info, rgb, reference, args, budget, scratch)


def load_network(model: str, camera: tuple[int, int]) -> tuple[Any, Any]:
    """(network in eval mode, ModelInfo): the bundled checkpoint, or a random-init one at
    the camera size."""
    import torch

    from anomaly_seg_ros.model.sidecar import ModelInfo, load_model_info

    if model == "bundled":
        from anomaly_seg_ros.networks.checkpoint import load_checkpoint

        network, _ = load_checkpoint(BUNDLED_MODEL)
        return network.eval(), load_model_info(BUNDLED_MODEL)

    from anomaly_seg_ros.networks import create_network

    torch.manual_seed(0)
    network = create_network(model, num_classes=19, output_stride=16)
    estimate_batch_norm_statistics(network)
    return network.eval(), ModelInfo(CLASS_NAMES, camera[0], camera[1])


def estimate_batch_norm_statistics(network: Any, size: tuple[int, int] = (256, 512)) -> None:
    """Give a random-init network the batch-norm statistics of its own activations on two
    random frames, as training would: with the initial ones (mean 0, variance 1) the
    activations of a 101-layer network grow layer by layer past float16's range (65504),
    and fp16 would be measured on infinities instead of on numbers like a trained model's."""
    import torch

    norms = [m for m in network.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the calibration frames
    network.train()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(2):
            network(torch.randn(2, 3, *size, generator=generator))
    network.eval()


def torch_backend(network: Any, info: Any, device: str, fp16: bool, scratch: Path) -> Any:
    from anomaly_seg_ros.backends.torch import TorchBackend

    on_cuda = device.startswith("cuda")
    return TorchBackend(
        scratch / "network.pt",
        info,
        copy.deepcopy(network),  # the backend moves and casts its network in place
        device=device,
        fp16=fp16,
        channels_last=on_cuda,
        cuda_graphs=on_cuda,
    )


def network_input(rgb: Any, info: Any) -> Any:
    from anomaly_seg_ros.pipeline.preprocess import to_network_input

    return to_network_input(rgb, info)


def cpu_reference(network: Any, info: Any, rgb: Any, scratch: Path) -> Any:
    """The frame's logit summary from the CPU path (torch, fp32)."""
    with torch_backend(network, info, "cpu", False, scratch) as backend:
        return backend.infer(network_input(rgb, info))


def compare_summaries(reference: Any, other: Any) -> str:
    """Labels agreeing and the largest max-logit / log-sum-exp difference over the spread."""
    import numpy as np

    agree = float(np.mean(reference.label == other.label)) * 100
    parts = [f"labels {agree:.2f} % equal"]
    broken = float(np.mean(~np.isfinite(other.max_logit))) * 100
    if broken:  # overflow (fp16): say so rather than a NaN difference
        parts.append(f"NON-FINITE max_logit on {broken:.2f} % of pixels")
    for name in ("max_logit", "logsumexp"):
        expected, actual = getattr(reference, name), getattr(other, name)
        spread = float(np.ptp(expected)) or 1.0
        both = np.isfinite(expected) & np.isfinite(actual)
        difference = float(np.max(np.abs(expected - actual)[both], initial=0.0))
        parts.append(f"{name} max |Δ| {difference / spread:.1e} of range")
    return ", ".join(parts)


def measure(
    backend: Any, rgb: Any, config_name: str, args: argparse.Namespace
) -> dict[str, list[float]]:
    """Seconds per stage, of ``backend.infer`` alone ("network") and of the whole
    ``Detector.detect`` ("detector"), over ``args.iterations`` frames after the warm-up."""
    from anomaly_seg_ros.config import DetectorConfig
    from anomaly_seg_ros.detector import Detector

    config = DetectorConfig() if config_name == "plain" else refined_config()
    detector = Detector(backend, config)
    blob = network_input(rgb, backend.info)
    stages: dict[str, list[float]] = {}
    for iteration in range(args.warmup + args.iterations):
        started = time.perf_counter()
        backend.infer(blob)  # .cpu() of the outputs waits for the device
        network = time.perf_counter() - started
        started = time.perf_counter()
        result = detector.detect(rgb)
        whole = time.perf_counter() - started
        if config_name == "in-graph" and result.summary.refined_score is None:
            raise RuntimeError("the in-graph engine returned no refined_score")
        if iteration < args.warmup:
            continue
        timings = {**result.timings, "network": network, "detector": whole}
        timings.update(getattr(backend, "last_timings", {}))
        for stage, seconds in timings.items():
            stages.setdefault(stage, []).append(seconds)
    return stages


def graph_against_host(summary: Any) -> str:
    """The refined score the device computed against the host refinement of the same
    summary (an export's check allows 1e-5 of the score's magnitude)."""
    import numpy as np

    from anomaly_seg_ros.pipeline.refine import refine_score
    from anomaly_seg_ros.pipeline.scores import compute_score

    config = refined_config()
    host = refine_score(compute_score(config.score_type, summary), summary, config)
    finite = np.isfinite(host)
    difference = float(np.max(np.abs(summary.refined_score - host)[finite], initial=0.0))
    magnitude = max(1.0, float(np.max(np.abs(host[finite]), initial=0.0)))
    relative = difference / magnitude
    return f"refined score vs the host's refinement: max |Δ| {relative:.1e} of magnitude"


def refined_config() -> Any:
    """The detector settings of the "refined" and "in-graph" rows."""
    from anomaly_seg_ros.config import DetectorConfig

    return DetectorConfig().replace(**REFINED)


def print_row(backend: str, config: str, stages: dict[str, list[float]]) -> None:
    """Median milliseconds: network, host stages, the whole detector."""
    median = {stage: statistics.median(values) * 1e3 for stage, values in stages.items()}
    host = sum(median.get(stage, 0.0) for stage in HOST_STAGES)
    parts = [f"network {median['network']:.2f}"]
    if "h2d" in median:  # TensorRT's own split
        parts.append(f"(H2D {median['h2d']:.2f}, D2H {median['d2h']:.2f})")
    parts += [f"{stage} {median[stage]:.2f}" for stage in HOST_STAGES if stage in median]
    parts += [f"host {host:.2f}", f"Detector.detect {median['detector']:.2f}"]
    print(f"    {backend:<15} {config:<8} " + ", ".join(parts) + " ms")


def run_tensorrt(
    network: Any,
    info: Any,
    rgb: Any,
    reference: Any,
    args: argparse.Namespace,
    budget: Budget,
    scratch: Path,
) -> None:
    """TensorRT rows when its Python packages import (possibly from travelling wheels)."""
    try:
        from anomaly_seg_ros.backends.tensorrt import TensorRTBackend
        from anomaly_seg_ros.deploy.trt_builder import prepare_engine
    except ImportError as error:
        print(f"  tensorrt: not available ({error}); its wheels may travel in {args.wheels}")
        return
    for precision in args.precisions:
        for in_graph in (False, True):
            label = f"tensorrt {precision}{' in-graph' if in_graph else ''}"
            if budget.spent(label, needs=TENSORRT_BUILD_SEC):
                return
            with tensorrt_backend(
                network, info, precision, in_graph, scratch, prepare_engine, TensorRTBackend
            ) as backend:
                if reference is not None and not in_graph:
                    parity = compare_summaries(reference, backend.infer(network_input(rgb, info)))
                    print(f"  {label}: parity vs CPU fp32: {parity}")
                for config_name in ("in-graph",) if in_graph else ("plain", "refined"):
                    print_row(label, config_name, measure(backend, rgb, config_name, args))


@contextmanager
def tensorrt_backend(
    network: Any,
    info: Any,
    precision: str,
    in_graph: bool,
    scratch: Path,
    prepare_engine: Callable[..., Any],
    backend_class: Callable[..., Any],
) -> Iterator[Any]:
    from anomaly_seg_ros.networks.export import export_onnx

    size = info.input_size
    onnx_path = scratch / f"{id(network)}-{size[0]}x{size[1]}-{precision}-{int(in_graph)}.onnx"
    trt_info = export_onnx(
        network,
        onnx_path,
        size,
        list(info.class_names),
        precision=precision,
        check=False,
        refine_in_graph=refined_config() if in_graph else None,
    )
    started = time.perf_counter()
    engine = prepare_engine(onnx_path, trt_info, cache_dir=scratch / "engines")
    print(f"  tensorrt {precision} engine ready in {time.perf_counter() - started:.0f} s")
    backend = backend_class(trt_info, onnx_path, engine.data, profile=True)
    try:
        yield backend
    finally:
        backend.close()


def count_flops(network: Any, size: tuple[int, int]) -> float:
    """FLOPs (2 per multiply-add) of one forward pass, counted by torch on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    shadow = copy.deepcopy(network).to("meta")  # shapes only: no memory, no compute
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        shadow(torch.zeros(1, 3, *size, device="meta"))
    return float(counter.get_total_flops())


if __name__ == "__main__":
    sys.exit(main())
