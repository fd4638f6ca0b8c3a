"""Host refinement vs the refinement in the graph, side by side on ONNX Runtime (CPU).

Prints medians (milliseconds) of, alternating frame by frame in one process:

1. the whole frame through the Detector with the bundled model: ``host`` = the plain model
   + score and refinement on the host (strip pool), ``in-graph`` = the model exported with
   the same refinement (``refined_score``), the host only resizing and masking;
2. the refinement alone at the model size and at 1024×2048: the host's
   ``compute_score`` + ``refine_score`` (on a strip pool) vs the exported refinement graph
   alone under ONNX Runtime, on the bundled model's summary of a rendered drive frame.

    .venv/bin/python benchmarks/graph_refinement.py [--frames 10] [--config all|demo]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

DEMO = Path(__file__).resolve().parents[1] / "models" / "demo" / "demo.onnx"
CONFIGS = {
    "all": {
        "score_type": "entropy",
        "boundary_suppression": True,
        "dilated_smoothing": True,
        "vde": True,
    },
    "demo": {},  # the bundled params file as it is
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--frames", type=int, default=10, help="timed frames per path")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="all")
    args = parser.parse_args(argv)

    import onnxruntime as ort

    from anomaly_seg_ros.config import config_from_params_file
    from anomaly_seg_ros.detector import Detector
    from anomaly_seg_ros.model.sidecar import load_model_info
    from anomaly_seg_ros.model.sml_stats import load_sml_stats
    from anomaly_seg_ros.model.summary import OUTPUT_NAMES, REFINED_SCORE_NAME
    from anomaly_seg_ros.networks.refine_graph import append_refinement, refinement_module_onnx
    from demo.drive import DriveSpec, render_drive

    info = load_model_info(DEMO)
    stats_path = DEMO.with_suffix(".sml.json")
    stats = load_sml_stats(stats_path, info.class_names)
    config = config_from_params_file(str(DEMO.with_suffix(".params.yaml")))
    config = config.replace(**CONFIGS[args.config])
    spec = DriveSpec(frames=2, clip_frames=1, height=info.input_height, width=info.input_width)
    images = [frame.image for frame in render_drive(spec)]
    print(
        f"load {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs; onnxruntime "
        f"{ort.__version__}; settings {args.config}: {config.score_type}, suppression "
        f"{config.boundary_suppression}, smoothing {config.dilated_smoothing}, vde {config.vde}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        refined = Path(scratch) / "refined.onnx"
        append_refinement(DEMO, refined, config, stats)
        host = Detector.from_path(DEMO, config, "onnxruntime", stats_path)
        graph = Detector.from_path(refined, config, "onnxruntime", stats_path)
        with host, graph:
            times: dict[str, list[float]] = {"host": [], "in-graph": []}
            stages: dict[str, list[float]] = {"host": [], "in-graph": []}
            for index in range(args.frames + 1):
                for name, detector in (("host", host), ("in-graph", graph)):
                    started = time.perf_counter()
                    result = detector.detect(images[index % len(images)])
                    if index:  # the first frame warms up
                        times[name].append(time.perf_counter() - started)
                        post = sum(result.timings[s] for s in ("inference", "score", "refine"))
                        stages[name].append(post)
            print(
                "\nwhole frame through the Detector, bundled model "
                f"{info.input_height}x{info.input_width} (median ms):"
            )
            for name in times:
                print(
                    f"  {name:<9} frame {ms(times[name]):8.1f}   "
                    f"inference+score+refine {ms(stages[name]):8.1f}"
                )
            ratio = statistics.median(a / b for a, b in zip(times["in-graph"], times["host"]))
            print(f"  in-graph / host, frame by frame: {ratio:.3f}")
            summary = result.summary

        print("\nrefinement alone (score + refinement), median ms:")
        for size in (info.input_size, (1024, 2048)):
            maps = {name: resized(getattr(summary, name), size) for name in OUTPUT_NAMES}
            part = Path(scratch) / f"part-{size[0]}.onnx"
            refinement_module_onnx(config, size, part, stats)
            session = ort.InferenceSession(os.fspath(part), providers=["CPUExecutionProvider"])
            feed = {name: array[None] for name, array in maps.items()}
            host_times, graph_times = [], []
            from anomaly_seg_ros.model.summary import LogitSummary
            from anomaly_seg_ros.pipeline.refine import refine_score
            from anomaly_seg_ros.pipeline.scores import compute_score
            from anomaly_seg_ros.pipeline.strips import StripPool

            frame_summary = LogitSummary.from_outputs(maps)
            with StripPool(0) as pool:
                for index in range(args.frames + 1):
                    started = time.perf_counter()
                    score = compute_score(config.score_type, frame_summary, *stats)
                    refine_score(score, frame_summary, config, pool)
                    middle = time.perf_counter()
                    session.run([REFINED_SCORE_NAME], feed)
                    if index:
                        host_times.append(middle - started)
                        graph_times.append(time.perf_counter() - middle)
            print(
                f"  {size[0]}x{size[1]}: host {ms(host_times):7.1f}, ONNX Runtime graph "
                f"{ms(graph_times):7.1f} (graph / host {ms(graph_times) / ms(host_times):.2f})"
            )
    print(f"load {os.getloadavg()[0]:.2f} (1 min) at the end")
    return 0


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1e3


def resized(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A summary map at another size (labels nearest, floats bilinear)."""
    if array.shape == size:
        return array
    interpolation = cv2.INTER_NEAREST if array.dtype == np.uint8 else cv2.INTER_LINEAR
    return cv2.resize(array, (size[1], size[0]), interpolation=interpolation)


if __name__ == "__main__":
    sys.exit(main())
