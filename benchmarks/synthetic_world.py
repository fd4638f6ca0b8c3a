"""Synthetic world speed: frames per second on ONE core, rendering and rendering + writing.

Usage::

    python benchmarks/synthetic_world.py                  # 256×512, 100 frames
    python benchmarks/synthetic_world.py --height 512 --width 1024 --frames 50

Pins OpenCV to one thread and this process to one CPU (where the OS allows), renders
Cityscapes-style frames (seeded), then renders + writes them as Cityscapes PNGs, and
test-anomaly frames (which re-draw until anomalies are visible). Prints JSON with wall-clock
frames/s and frames per CPU-second of this process: on a machine shared with other jobs
the second is the figure for "one core", the first shows what the machine gave.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2

from demo.synthetic.generate import render_anomaly_frame, render_frame
from demo.synthetic.scene import World
from demo.synthetic.writers import write_cityscapes_frame


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--frames", type=int, default=100)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    world = World(args.height, args.width, seed=0)
    render_frame(world, 0, "train", 10_000)  # warm-up (allocations, OpenCV init)

    started, cpu_started = time.perf_counter(), time.process_time()
    for index in range(args.frames):
        render_frame(world, 0, "train", index)
    render_fps = args.frames / (time.perf_counter() - started)
    render_cpu_fps = args.frames / (time.process_time() - cpu_started)

    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        for index in range(args.frames):
            write_cityscapes_frame(
                Path(scratch), "train", index, render_frame(world, 0, "train", index)
            )
        write_fps = args.frames / (time.perf_counter() - started)

    count = max(1, args.frames // 4)
    started = time.perf_counter()
    for index in range(count):
        render_anomaly_frame(world, 0, index)
    anomaly_fps = count / (time.perf_counter() - started)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(
        json.dumps(
            {
                "size": [args.height, args.width],
                "frames": args.frames,
                "cores": 1,
                "render_fps": round(render_fps, 1),
                "render_fps_per_cpu_second": round(render_cpu_fps, 1),
                "render_and_write_fps": round(write_fps, 1),
                "anomaly_frame_fps": round(anomaly_fps, 1),
                "load_average_1min": load,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
