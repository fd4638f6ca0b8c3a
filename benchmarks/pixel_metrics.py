"""Exact pixel metrics vs scikit-learn: wall time and peak memory on synthetic score maps.

Usage::

    python benchmarks/pixel_metrics.py                 # 2e7 pixels
    python benchmarks/pixel_metrics.py --pixels 2e8    # Fishyscapes Lost & Found size
    python benchmarks/pixel_metrics.py --pixels 2e8 --skip-ours   # scikit-learn needs ~16 GB

Each method runs in its own subprocess so that its peak resident memory (``ru_maxrss``) is
its own. Data: 1024×2048 frames, 1 % anomalous and 5 % void pixels, float32 scores
``N(0, 1) + 2·label`` (continuous, so few ties); the same seeded arrays for both methods.
scikit-learn gets the valid pixels of the concatenated arrays and computes AUROC, AP and
the ROC curve (for FPR@95); ours processes frame by frame and evaluates.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FRAME_SHAPE = (1024, 2048)


def make_data(num_pixels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(F, 1024, 2048) float32 scores and uint8 labels, generated frame by frame."""
    num_frames = max(1, round(num_pixels / (FRAME_SHAPE[0] * FRAME_SHAPE[1])))
    scores = np.empty((num_frames, *FRAME_SHAPE), dtype=np.float32)
    labels = np.empty((num_frames, *FRAME_SHAPE), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    for index in range(num_frames):
        draw = rng.random(FRAME_SHAPE, dtype=np.float32)
        labels[index] = np.where(draw < 0.01, 1, np.where(draw > 0.95, 255, 0))
        scores[index] = rng.standard_normal(FRAME_SHAPE, dtype=np.float32)
        scores[index] += 2.0 * (labels[index] == 1)
    return scores, labels


def run_ours(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from anomaly_seg_ros.evaluation.pixel_metrics import ExactPixelEvaluator

    evaluator = ExactPixelEvaluator()
    for score, label in zip(scores, labels):
        evaluator.process(score, label)
    metrics = evaluator.evaluate()
    return {
        "auroc": metrics.auroc,
        "ap": metrics.average_precision,
        "fpr95": metrics.fpr_at_95_tpr,
    }


def run_sklearn(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    valid = labels != 255
    y_true, y_score = labels[valid], scores[valid]
    fpr, tpr, _ = roc_curve(y_true, y_score, drop_intermediate=False)
    return {
        "auroc": roc_auc_score(y_true, y_score),
        "ap": average_precision_score(y_true, y_score),
        "fpr95": float(fpr[np.searchsorted(tpr, 0.95)]),
    }


def child(method: str, num_pixels: int) -> None:
    """Run one method and print a JSON line with time and memory."""
    scores, labels = make_data(num_pixels)
    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = (run_ours if method == "ours" else run_sklearn)(scores, labels)
    elapsed = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result.update(
        seconds=elapsed,
        pixels=int(scores.size),
        input_gib=(scores.nbytes + labels.nbytes) / 2**30,
        peak_gib=peak_kib / 2**20,
        extra_gib=(peak_kib - baseline_kib) / 2**20,
    )
    print(json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=float, default=2e7, help="pixels in total")
    parser.add_argument("--skip-sklearn", action="store_true", help="time only ours")
    parser.add_argument("--skip-ours", action="store_true", help="time only scikit-learn")
    parser.add_argument("--child", choices=("ours", "sklearn"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, int(args.pixels))
        return 0
    repo_root = str(Path(__file__).resolve().parents[1])
    results = {}
    methods = [
        method
        for method, skipped in (("ours", args.skip_ours), ("sklearn", args.skip_sklearn))
        if not skipped
    ]
    for method in methods:
        output = subprocess.run(
            [sys.executable, __file__, "--pixels", str(args.pixels), "--child", method],
            check=True,
            capture_output=True,
            text=True,
            env={"PYTHONPATH": repo_root, "PATH": ""},
        ).stdout
        results[method] = json.loads(output.strip().splitlines()[-1])
    for method, result in results.items():
        print(
            f"{method:8s} {result['pixels']:.2e} px: {result['seconds']:7.2f} s, "
            f"peak RSS {result['peak_gib']:5.2f} GiB (input {result['input_gib']:.2f} GiB, "
            f"+{result['extra_gib']:.2f} GiB), AUROC {result['auroc']:.6f}, "
            f"AP {result['ap']:.6f}, FPR95 {result['fpr95']:.6f}"
        )
    if len(results) == 2:
        ours, reference = results["ours"], results["sklearn"]
        print(f"speed-up: {reference['seconds'] / ours['seconds']:.1f}x")
        for key in ("auroc", "ap", "fpr95"):
            print(f"|Δ{key}| = {abs(ours[key] - reference[key]):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
