"""Per-stage latency of the detector on a GPU: PyTorch CUDA and TensorRT (prints only).

For DeepLabv3+ ResNet-101 (OS16) and WideResNet38 (DeepWV3Plus, OS8) at 1024×2048 and
512×1024, fp16 and fp32, it times one camera frame (1024×2048 RGB) through: preprocess,
H2D, network, D2H, host post-processing (score, refinement, resize, mask), and building
the output messages; and prints the compute floor (network FLOPs / the GPU's peak).
TensorRT also runs the ``in-graph`` row: the same refinement exported into the graph
(``export_onnx(..., refine_in_graph=...)``), so the GPU computes score, suppression,
smoothing and VDE and the host only resizes, thresholds and packs.

    .venv/bin/python benchmarks/gpu.py [--networks resnet101] [--sizes 512x1024] ...

Random weights: the timing does not depend on them. Exits 0 with a message without a GPU.
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

CLASS_NAMES = tuple(f"class{index}" for index in range(19))
CAMERA_SIZE = (1024, 2048)
#: Dense peak TFLOPS (fp16 tensor cores, fp32 without TF32) by GPU name fragment.
PEAK_TFLOPS = {
    "H100 80GB HBM3": (989.0, 67.0),
    "H100 PCIe": (756.0, 51.0),
    "H200": (989.0, 67.0),
    "A100": (312.0, 19.5),
    "L4": (121.0, 30.3),
    "RTX 4090": (165.0, 82.6),
    "Orin": (42.5, 5.3),  # AGX Orin 64GB GPU at 1.3 GHz, dense
}
OUTPUT_STRIDES = {"resnet101": 16, "wideresnet38": 8}
REFINED = {"boundary_suppression": True, "dilated_smoothing": True, "vde": True}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--networks", nargs="+", default=list(OUTPUT_STRIDES))
    parser.add_argument("--sizes", nargs="+", default=["1024x2048", "512x1024"])
    parser.add_argument("--precisions", nargs="+", default=["fp16", "fp32"])
    parser.add_argument("--backends", nargs="+", default=["torch", "tensorrt"])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, help="TensorRT engine cache (default: temp)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        import torch
    except ImportError:
        print("benchmarks/gpu.py: torch is not installed; nothing to measure")
        return 0
    if not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA GPU available; nothing to measure")
        return 0
    gpu = torch.cuda.get_device_name(0)
    print(f"GPU: {gpu}; torch {torch.__version__}; camera {CAMERA_SIZE[0]}x{CAMERA_SIZE[1]}")
    with tempfile.TemporaryDirectory() as scratch:
        cache_dir = args.cache_dir or Path(scratch) / "engines"
        for backbone in args.networks:
            for size_text in args.sizes:
                height, width = (int(v) for v in size_text.split("x"))
                size = (height, width)
                network = make_network(backbone)
                flops = count_flops(network, size)
                for precision in args.precisions:
                    print_floor(backbone, size_text, precision, flops, gpu)
                    for backend_name in args.backends:
                        backend = make_backend(
                            backend_name, network, size, precision, Path(scratch), cache_dir
                        )
                        if backend is None:
                            continue
                        with backend:
                            for config_name in ("plain", "refined"):
                                stages = measure(backend, config_name, args)
                                print_row(backend_name, config_name, stages)
                        if backend_name != "tensorrt":
                            continue
                        in_graph = make_backend(
                            backend_name, network, size, precision, Path(scratch), cache_dir, True
                        )
                        if in_graph is not None:
                            with in_graph:
                                stages = measure(in_graph, "in-graph", args)
                                print_row(backend_name, "in-graph", stages)
                del network
                torch.cuda.empty_cache()
    return 0


def make_network(backbone: str) -> Any:
    from anomaly_seg_ros.networks import create_network

    return create_network(backbone, num_classes=19, output_stride=OUTPUT_STRIDES[backbone]).eval()


def count_flops(network: Any, size: tuple[int, int]) -> float:
    """FLOPs (2 per multiply-add) of one forward pass, counted by torch on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    shadow = copy.deepcopy(network).to("meta")  # shapes only: no memory, no compute
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        shadow(torch.zeros(1, 3, *size, device="meta"))
    return float(counter.get_total_flops())


def print_floor(backbone: str, size: str, precision: str, flops: float, gpu: str) -> None:
    peaks = next((value for name, value in PEAK_TFLOPS.items() if name in gpu), None)
    floor = "unknown peak for this GPU"
    if peaks is not None:
        peak = peaks[0] if precision == "fp16" else peaks[1]
        floor = f"{flops / (peak * 1e12) * 1e3:.2f} ms at {peak:g} TFLOPS"
    print(f"\n{backbone} {size} {precision}: {flops / 2e12:.3f} TMAC, compute floor {floor}")


def make_backend(
    name: str,
    network: Any,
    size: tuple[int, int],
    precision: str,
    scratch: Path,
    cache_dir: Path,
    refine_in_graph: bool = False,
) -> Any:
    """The backend ``name`` for ``network``, or None (with a message) if unavailable.

    :param refine_in_graph: (TensorRT) an engine whose graph also computes the
        :data:`REFINED` score and refinement as its output ``refined_score``.
    """
    from anomaly_seg_ros.config import DetectorConfig
    from anomaly_seg_ros.model_info import ModelInfo

    info = ModelInfo(CLASS_NAMES, size[0], size[1], precision=precision)
    if name == "torch":
        from anomaly_seg_ros.backends.torch import TorchBackend

        return TorchBackend(
            scratch / "network.pt",
            info,
            copy.deepcopy(network),  # the backend moves and casts its network in place
            device="cuda",
            fp16=precision == "fp16",
            channels_last=True,
            cuda_graphs=True,
        )
    try:
        from anomaly_seg_ros.backends.tensorrt import TensorRTBackend
        from anomaly_seg_ros.deploy.trt_builder import prepare_engine
    except ImportError as error:
        print(f"  tensorrt: not available ({error})")
        return None
    from anomaly_seg_ros.networks.export import export_onnx

    variant = "-in-graph" if refine_in_graph else ""
    onnx_path = scratch / f"{id(network)}-{size[0]}x{size[1]}-{precision}{variant}.onnx"
    refinement = DetectorConfig().replace(**REFINED) if refine_in_graph else None
    info = export_onnx(
        network,
        onnx_path,
        size,
        CLASS_NAMES,
        precision=precision,
        check=False,
        refine_in_graph=refinement,
    )
    started = time.perf_counter()
    engine = prepare_engine(onnx_path, info, cache_dir=cache_dir)
    print(f"  tensorrt engine ready in {time.perf_counter() - started:.0f} s")
    return TensorRTBackend(info, onnx_path, engine.data, profile=True)


def measure(backend: Any, config_name: str, args: argparse.Namespace) -> dict[str, list[float]]:
    """Seconds per stage over ``args.iterations`` frames, after ``args.warmup``."""
    from anomaly_seg_ros.config import DetectorConfig
    from anomaly_seg_ros.detector import Detector

    config = DetectorConfig().replace(**({} if config_name == "plain" else REFINED))
    detector = Detector(backend, config)
    rgb = np.random.default_rng(0).integers(0, 256, (*CAMERA_SIZE, 3), dtype=np.uint8)
    build_messages = message_builder()
    stages: dict[str, list[float]] = {}
    for iteration in range(args.warmup + args.iterations):
        result = detector.detect(rgb)
        if config_name == "in-graph" and result.summary.refined_score is None:
            raise RuntimeError("the in-graph engine returned no refined_score")
        started = time.perf_counter()
        build_messages(result)
        timings = dict(result.timings)
        timings["messages"] = time.perf_counter() - started
        timings.update(getattr(backend, "last_timings", {}))
        if iteration >= args.warmup:
            for stage, seconds in timings.items():
                stages.setdefault(stage, []).append(seconds)
    return stages


def message_builder() -> Callable[[Any], None]:
    """Packs labels, score and mask as the node does (as rclpy messages if available)."""
    from anomaly_seg_ros.io.outputs import result_images

    names = ("labels", "anomaly_score", "anomaly_mask")
    try:
        from std_msgs.msg import Header

        from anomaly_seg_ros.ros.messages import raw_to_message
    except ImportError:  # no ROS here: pack the images, skip the message wrapper

        def pack(result: Any) -> None:
            result_images(result, names)

        return pack
    header = Header(frame_id="camera")

    def build(result: Any) -> None:
        for raw in result_images(result, names).values():
            raw_to_message(raw, header)

    return build


def print_row(backend: str, config: str, stages: dict[str, list[float]]) -> None:
    """One line of median milliseconds per stage and the end-to-end ratio."""
    median = {stage: statistics.median(values) * 1e3 for stage, values in stages.items()}
    post = sum(median.get(s, 0.0) for s in ("score", "refine", "vde", "resize", "mask"))
    total = median["preprocess"] + median["inference"] + post + median["messages"]
    network = median.get("network", median["inference"])
    parts = [f"preprocess {median['preprocess']:.2f}"]
    if "network" in median:
        parts += [f"H2D {median['h2d']:.2f}", f"network {network:.2f}", f"D2H {median['d2h']:.2f}"]
    else:
        parts += [f"inference(H2D+network+D2H) {median['inference']:.2f}"]
    parts += [f"host post {post:.2f}", f"messages {median['messages']:.2f}"]
    print(
        f"  {backend:<8} {config:<8} " + ", ".join(parts) + f" | end-to-end {total:.2f} ms"
        f" = {total / network:.2f}x network (goal ≤ 1.3x; host post goal ≤ 5 ms)"
    )


if __name__ == "__main__":
    sys.exit(main())
