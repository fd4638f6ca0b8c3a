"""Latency of the bundled demo model with ONNX Runtime on the CPU.

Usage::

    python benchmarks/demo_model.py [--model models/demo/demo.onnx] [--runs 50]
    python benchmarks/demo_model.py --tradeoff      # widths x input sizes, random weights
    python benchmarks/demo_model.py --against old.onnx   # side by side, e.g. from
        # git show ad90057:models/demo/demo.onnx > old.onnx  (and old.json beside it)

Prints JSON: the graph alone (one ``session.run`` at the model's input size) for 1 and
all intra-op threads, and the whole ``Detector.detect`` (preprocess, inference, score,
mask) on a synthetic frame at the input size. CPU time per frame is given too, since a
shared machine's wall time depends on its other jobs. ``--tradeoff`` exports randomly
initialised MobileNetV2 DeepLabv3+ networks of several widths, both decoders and input
sizes (latency does not depend on the weights) and times each with one thread.
``--against`` runs this model and another through the package's ONNX Runtime backend (its
settings: spinning off) alternately in one process, run by run, so load from elsewhere
hits both alike, and prints each one's median wall and CPU time and the median ratio this/other.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from demo.model.card import ort_latency


def detector_latency(model: Path, runs: int) -> dict:
    """Median wall and CPU time of ``Detector.detect`` on a synthetic frame."""
    from anomaly_seg_ros.detector import Detector
    from demo.synthetic.generate import render_frame
    from demo.synthetic.scene import World

    detector = Detector.from_path(model, backend="onnxruntime")
    height, width = detector.info.input_size
    image = render_frame(World(height, width), 0, "val", 0).image
    for _ in range(3):
        detector.detect(image)
    wall, cpu = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        detector.detect(image)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    median = float(np.median(wall))
    return {
        "median_ms": round(1000 * median, 1),
        "fps": round(1 / median, 1),
        "cpu_ms_per_frame": round(1000 * float(np.median(cpu)), 1),
    }


def side_by_side(model: Path, other: Path, runs: int, threads: int) -> dict:
    """Both models alternately (A B, B A, ...) through the package's ONNX Runtime backend.

    :return: per model the median wall / CPU ms of one inference, and the median of the
        per-pair ratios model/other.
    """
    from anomaly_seg_ros.backends.onnxruntime import OnnxRuntimeBackend
    from anomaly_seg_ros.model.sidecar import load_model_info

    backends = []
    for path in (model, other):
        info = load_model_info(path)
        backend = OnnxRuntimeBackend(
            path, info, providers=["CPUExecutionProvider"], threads=threads
        )
        image = np.random.default_rng(0).standard_normal((1, 3, *info.input_size))
        backends.append((backend, image.astype(np.float32)))
    times: list[list[tuple[float, float]]] = [[], []]
    for run in range(runs + 3):
        order = (0, 1) if run % 2 == 0 else (1, 0)
        for which in order:
            backend, image = backends[which]
            started, cpu_started = time.perf_counter(), time.process_time()
            backend.infer(image)
            if run >= 3:  # warm-up
                elapsed = (time.perf_counter() - started, time.process_time() - cpu_started)
                times[which].append(elapsed)
    result: dict = {"threads": threads or "all", "runs": runs}
    for name, series in zip(("model", "other"), times):
        result[name] = {
            "median_ms": round(1000 * float(np.median([wall for wall, _ in series])), 1),
            "cpu_ms": round(1000 * float(np.median([cpu for _, cpu in series])), 1),
        }
    ratios = [a[0] / b[0] for a, b in zip(*times)]
    cpu_ratios = [a[1] / b[1] for a, b in zip(*times) if b[1] > 0]
    result["wall_ratio"] = round(float(np.median(ratios)), 3)
    result["cpu_ratio"] = round(float(np.median(cpu_ratios)), 3) if cpu_ratios else None
    return result


def tradeoff(runs: int) -> list[dict]:
    """One-thread ONNX Runtime latency per (width, input size), random weights."""
    import tempfile

    import torch

    from anomaly_seg_ros.networks import create_network
    from anomaly_seg_ros.networks.export import export_onnx

    rows = []
    names = [f"class{index}" for index in range(19)]
    with tempfile.TemporaryDirectory() as scratch:
        for width, decoder in (
            (0.35, "dense"),
            (0.5, "dense"),
            (1.0, "dense"),
            (0.5, "separable"),
        ):
            torch.manual_seed(0)
            network = create_network(
                "mobilenetv2", 19, 16, width_mult=width, decoder=decoder
            ).eval()
            parameters = sum(p.numel() for p in network.parameters())
            for size in ((192, 384), (256, 512), (320, 640)):
                path = Path(scratch) / f"w{width}_{decoder}_{size[0]}.onnx"
                export_onnx(network, path, size, names, check=False)
                timing = ort_latency(path, runs, threads=1)
                rows.append(
                    {
                        "width_mult": width,
                        "decoder": decoder,
                        "input": list(size),
                        "parameters_m": round(parameters / 1e6, 2),
                        "onnx_mb": round(path.stat().st_size / 1e6, 1),
                        "cpu_ms_1_thread": timing["cpu_ms"],
                        "fps_1_thread": timing["fps"],
                    }
                )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/demo/demo.onnx"))
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--tradeoff", action="store_true", help="widths x input sizes table")
    parser.add_argument("--against", type=Path, help="another model (+ sidecar) side by side")
    args = parser.parse_args()
    if args.against:
        result = {
            "model": str(args.model),
            "other": str(args.against),
            "load_average_1min": os.getloadavg()[0],
            "one_thread": side_by_side(args.model, args.against, args.runs, threads=1),
            "all_threads": side_by_side(args.model, args.against, args.runs, threads=0),
        }
        print(json.dumps(result, indent=2))
        return 0
    if args.tradeoff:
        print(json.dumps(tradeoff(min(args.runs, 20)), indent=2))
        return 0
    result = {
        "model": str(args.model),
        "cpu_cores": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "graph_1_thread": ort_latency(args.model, args.runs, threads=1),
        "graph_all_threads": ort_latency(args.model, args.runs, threads=0),
        "detector": detector_latency(args.model, args.runs),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
