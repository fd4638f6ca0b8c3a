"""Input resize of large camera frames: quality and cost of each filter, side by side.

Renders test-anomaly frames of the synthetic world at camera sizes (default 1920×1080 and
2048×1024), shrinks each to the model's input with

* ``linear``: OpenCV bilinear without antialiasing (the package before),
* ``area``: OpenCV ``INTER_AREA`` (:func:`anomaly_seg_ros.pipeline.preprocess.resize_smooth`, the
  package's default now),
* ``pil``: PIL's antialiased bilinear (``Image.resize(..., BILINEAR)``, which widens its
  filter by the shrink factor), another library's reference,

runs the same model on each, maps the outputs back to the camera size the same way, and
prints AP / FPR95 of each score over all frames (exact pixel metrics), the label agreement
with the PIL input, and the resize's cost per frame (wall and CPU, median over frames).
Then the whole Detector (default resize) with each ``aspect`` policy, scored over every
camera pixel (``center_crop``'s unseen bands at the lowest score, as published).
Nothing is tuned here: the world seed (default 31) is used by no training or selection.

    python benchmarks/resize.py                      # bundled model, 8 frames per size
    python benchmarks/resize.py --model my.onnx --frames 4 --sizes 1080x1920
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np
from PIL import Image

from anomaly_seg_ros.config import ASPECT_POLICIES, DetectorConfig
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.evaluation.pixel_metrics import ExactPixelEvaluator
from anomaly_seg_ros.model.bundled import calibrated_config, default_model_path
from anomaly_seg_ros.pipeline import preprocess
from anomaly_seg_ros.pipeline.postprocess import anomaly_score
from demo.synthetic.generate import render_anomaly_frame
from demo.synthetic.scene import World


def _linear(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def _area(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return preprocess.resize_smooth(rgb, size)


def _pil(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.BILINEAR))


FILTERS = {"linear": _linear, "area": _area, "pil": _pil}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="default: the bundled model")
    parser.add_argument("--sizes", nargs="+", default=["1080x1920", "1024x2048"], help="HxW")
    parser.add_argument("--frames", type=int, default=8, help="frames per camera size")
    parser.add_argument("--seed", type=int, default=31, help="world seed (held out)")
    args = parser.parse_args()
    model = args.model or default_model_path()
    tuned = calibrated_config(model) or DetectorConfig()
    configs = {"max_logit": DetectorConfig(), f"model's ({tuned.score_type}…)": tuned}
    report: dict[str, object] = {"load": os.getloadavg(), "model": str(model)}
    with Detector.from_path(model, DetectorConfig()) as detector:
        info = detector.info
        for text in args.sizes:
            height, width = (int(v) for v in text.split("x"))
            world = World(height, width, seed=args.seed)
            evaluators = {(f, c): ExactPixelEvaluator() for f in FILTERS for c in configs}
            wall = {name: [] for name in FILTERS}
            cpu = {name: [] for name in FILTERS}
            agreement = {name: [] for name in FILTERS}
            for index in range(args.frames):
                frame = render_anomaly_frame(world, args.seed, index)
                label = frame.anomaly.astype(np.uint8)
                labels = {}
                for name, resize in FILTERS.items():
                    started, cpu_started = time.perf_counter(), time.process_time()
                    small = resize(frame.image, info.input_size)
                    wall[name].append(time.perf_counter() - started)
                    cpu[name].append(time.process_time() - cpu_started)
                    summary = detector.backend.infer(preprocess.to_network_input(small, info))
                    labels[name] = summary.label
                    for key, config in configs.items():
                        score = anomaly_score(summary, config, (height, width), detector.sml_stats)
                        evaluators[(name, key)].process(score, label)
                for name in FILTERS:
                    agreement[name].append(float(np.mean(labels[name] == labels["pil"])))
            rows = {}
            for (name, key), evaluator in evaluators.items():
                metrics = evaluator.evaluate()
                rows[f"{name} / {key}"] = {
                    "AP %": round(100 * metrics.average_precision, 2),
                    "FPR95 %": round(100 * metrics.fpr_at_95_tpr, 2),
                }
            for name in FILTERS:
                rows[f"{name} / resize"] = {
                    "wall ms": round(1000 * float(np.median(wall[name])), 2),
                    "cpu ms": round(1000 * float(np.median(cpu[name])), 2),
                    "labels = pil's %": round(100 * float(np.mean(agreement[name])), 3),
                }
            for aspect in ASPECT_POLICIES:
                for key, config in configs.items():
                    detector.config = config.replace(aspect=aspect)
                    evaluator = ExactPixelEvaluator()
                    for index in range(args.frames):
                        frame = render_anomaly_frame(world, args.seed, index)
                        score = detector.detect(frame.image).score
                        evaluator.process(score, frame.anomaly.astype(np.uint8))
                    metrics = evaluator.evaluate()
                    rows[f"aspect {aspect} / {key}"] = {
                        "AP %": round(100 * metrics.average_precision, 2),
                        "FPR95 %": round(100 * metrics.fpr_at_95_tpr, 2),
                    }
            report[text] = rows
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
