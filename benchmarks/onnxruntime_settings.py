"""ONNX Runtime session settings against the whole frame (prints; asserts nothing).

ONNX Runtime's worker threads spin after each run by default, waiting for more work; on a
small CPU they then compete with the host post-processing that follows the network. This
runs the bundled model through ``Detector.detect`` (camera frames resized to the network,
every refinement on, labels colour and overlay built) for each setting — spinning on/off,
intra-op threads — interleaved round by round so the machine's drift hits all alike, and
prints per setting the median network time, host time (everything but preprocessing and
the network) and whole frame, with the ratio to the first setting.

    python benchmarks/onnxruntime_settings.py [--rounds 8] [--frames 5] [--camera 1024 2048]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from anomaly_seg_ros.config import config_from_params_file
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.model.bundled import default_model_path
from anomaly_seg_ros.pipeline.strips import available_cpus

NETWORK_STAGES = ("preprocess", "inference")


def settings(cpus: int) -> dict[str, dict[str, object]]:
    """Name → OnnxRuntimeBackend options; the first is ONNX Runtime's own default."""
    return {
        f"spinning on, {cpus} threads": {"spinning": True, "threads": cpus},
        f"spinning off, {cpus} threads": {"spinning": False, "threads": cpus},
        "spinning on, 1 thread": {"spinning": True, "threads": 1},
        "spinning off, 1 thread": {"spinning": False, "threads": 1},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--frames", type=int, default=5, help="frames per setting per round")
    parser.add_argument("--camera", type=int, nargs=2, default=(1024, 2048))
    args = parser.parse_args()
    model = default_model_path()
    config = config_from_params_file(str(model.with_suffix(".params.yaml"))).replace(
        boundary_suppression=True, dilated_smoothing=True, vde=True
    )
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(*args.camera, 3), dtype=np.uint8)
    chosen = settings(available_cpus())
    detectors = {
        name: Detector.from_path(model, config, "onnxruntime", **options)
        for name, options in chosen.items()
    }
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in chosen}
    try:
        for detector in detectors.values():  # warm-up
            detector.detect(frame, outputs=("labels_color", "overlay"))
        for round_index in range(args.rounds):
            names = list(detectors)
            if round_index % 2:
                names.reverse()
            for name in names:
                for _ in range(args.frames):
                    start = time.perf_counter()
                    result = detectors[name].detect(frame, outputs=("labels_color", "overlay"))
                    total = time.perf_counter() - start
                    network = result.timings["inference"]
                    host = total - sum(result.timings[s] for s in NETWORK_STAGES)
                    for key, value in (("network", network), ("host", host), ("frame", total)):
                        samples[name].setdefault(key, []).append(value * 1e3)
    finally:
        for detector in detectors.values():
            detector.close()
    first = next(iter(samples))
    medians = {
        name: {key: statistics.median(values) for key, values in figures.items()}
        for name, figures in samples.items()
    }
    print(
        f"bundled model {model.name}, camera {args.camera[0]}x{args.camera[1]}, "
        f"{args.rounds} rounds x {args.frames} frames, {available_cpus()} CPUs; medians in ms "
        f"(ratio to '{first}')"
    )
    print("| setting | network | host | frame |")
    print("|---|---|---|---|")
    for name, figures in medians.items():
        cells = [
            f"{figures[key]:.1f} ({figures[key] / medians[first][key]:.2f}x)"
            for key in ("network", "host", "frame")
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
