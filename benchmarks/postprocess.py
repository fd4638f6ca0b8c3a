"""Per-stage host times of Detector.detect at 1024×2048 (prints; asserts nothing).

The network is replaced by a backend that replays one precomputed logit summary, so the
figures are the host work alone: score, SML refinement, VDE, resize, mask (and overlay).
Goal (issue 2): score + refinement + VDE + resize + mask ≤ 40 ms on the 2-core CPU.

    python benchmarks/postprocess.py [--runs 30] [--camera 1080 1920] [--host-threads 1 0]

Each ``--host-threads`` value is one run (1 = serial; 0 = one thread per CPU, at most 8).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from anomaly_seg_ros.backends.base import InferenceBackend
from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.model.sidecar import ModelInfo
from anomaly_seg_ros.model.summary import LogitSummary

HOST_STAGES = ("score", "refine", "resize", "mask")


class ReplayBackend(InferenceBackend):
    """Returns the same summary for every frame: isolates host post-processing."""

    name = "replay"

    def __init__(self, info: ModelInfo, summary: LogitSummary) -> None:
        super().__init__(info, Path("replay"))
        self.summary = summary

    def infer(self, image: np.ndarray) -> LogitSummary:
        return self.summary


def street_summary(height: int, width: int, seed: int = 0) -> LogitSummary:
    """A plausible summary: sky/buildings/road layout with an obstacle, smooth noisy logits."""
    rng = np.random.default_rng(seed)
    label = np.full((height, width), 10, np.uint8)  # sky
    label[height // 3 :] = 2  # buildings
    rows = np.arange(height // 3, height)
    half = ((rows - height // 3) * width // (height * 4 // 3)).astype(int) + 8
    columns = np.arange(width)
    road = np.abs(columns[None, :] - width // 2) < half[:, None]
    label[height // 3 :][road] = 0
    label[height * 2 // 3 : height * 2 // 3 + height // 12, width // 2 - 60 : width // 2 + 40] = 13
    noise = cv2.GaussianBlur(rng.normal(size=(height, width)).astype(np.float32), (0, 0), 8)
    max_logit = (8.0 + 4.0 * noise).astype(np.float32)
    logsumexp = (max_logit + 0.1 + np.abs(noise)).astype(np.float32)
    return LogitSummary(
        label=label,
        max_logit=max_logit,
        min_logit=(max_logit - 12.0).astype(np.float32),
        logsumexp=logsumexp,
        entropy=np.abs(noise).astype(np.float32),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--size", type=int, nargs=2, default=(1024, 2048), metavar=("H", "W"))
    parser.add_argument(
        "--camera",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="camera resolution (default: the network size, no resize)",
    )
    parser.add_argument("--threads", type=int, default=0, help="OpenCV threads (0: default)")
    parser.add_argument(
        "--host-threads",
        type=int,
        nargs="+",
        default=[1, 0],
        help="Detector host_threads to compare (0: automatic)",
    )
    args = parser.parse_args()
    if args.threads:
        cv2.setNumThreads(args.threads)
    height, width = args.size
    info = ModelInfo(tuple(f"c{i}" for i in range(19)), height, width)
    summary = street_summary(height, width)
    stats = (np.full(19, 8.0, np.float32), np.full(19, 2.0, np.float32))
    config = DetectorConfig(
        score_type="sml",
        boundary_suppression=True,
        dilated_smoothing=True,
        vde=True,
        road_confidence=0.5,
        threshold=1.5,
        min_area=200,
    )
    camera = tuple(args.camera) if args.camera else (height, width)
    frame = np.zeros((*camera, 3), np.uint8)
    for host_threads in args.host_threads:
        with Detector(ReplayBackend(info, summary), config, stats, host_threads) as detector:
            report(detector, frame, args.runs, f"{height}x{width}", camera)


def report(
    detector: Detector, frame: np.ndarray, runs: int, network: str, camera: tuple[int, ...]
) -> None:
    samples: dict[str, list[float]] = {}
    for run in range(runs + 3):
        start = time.perf_counter()
        result = detector.detect(frame, outputs=("overlay",))
        total = time.perf_counter() - start
        if run < 3:
            continue  # warm-up: caches, thread pools
        for stage, seconds in result.timings.items():
            samples.setdefault(stage, []).append(seconds * 1e3)
        host = sum(result.timings[s] for s in HOST_STAGES) * 1e3
        samples.setdefault("HOST (score+refine+resize+mask)", []).append(host)
        samples.setdefault("total detect()", []).append(total * 1e3)
    print(
        f"\nnetwork {network}, camera {camera[0]}x{camera[1]}, {runs} runs, "
        f"host_threads {detector.strip_pool.threads}, OpenCV threads {cv2.getNumThreads()}"
    )
    print(f"{'stage':40s} {'median ms':>10s} {'p95 ms':>8s}")
    for stage, values in samples.items():
        p95 = float(np.percentile(values, 95))
        print(f"{stage:40s} {statistics.median(values):10.2f} {p95:8.2f}")


if __name__ == "__main__":
    main()
