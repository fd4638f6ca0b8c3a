"""Cost of the object outputs' messages per frame (prints; asserts nothing).

Builds and serialises (what ``publish`` does before the middleware) the node's object
messages for a frame with ``--objects`` confirmed objects of ``max_points`` ground points
each: the point cloud, the RViz markers (plus deletes for as many dropped tracks), and the
typed list when ``anomaly_seg_msgs`` is built and sourced. The image size does not enter:
the messages depend on the objects only. Part of issue 23's target "object stage (components
+ association + projection + messages) <= 5 ms per frame"; benchmarks/objects.py (if
present) measures the layer itself.

    python benchmarks/object_messages.py [--objects 10] [--runs 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.serialization import serialize_message
from std_msgs.msg import Header

from anomaly_seg_ros.io.object_messages import object_markers
from anomaly_seg_ros.objects import AnomalyObject, GroundPosition, ObjectSettings, Track
from anomaly_seg_ros.ros.object_messages import (
    marker_array_message,
    message_module,
    object_array_message,
    point_cloud_message,
)


def frame_tracks(count: int, points: int, seed: int = 0) -> list[Track]:
    """``count`` confirmed tracks, 8 to 80 m ahead, ``points`` contact points each."""
    rng = np.random.default_rng(seed)
    tracks = []
    for index in range(count):
        forward, left = float(rng.uniform(8, 80)), float(rng.uniform(-6, 6))
        contact = np.zeros((points, 3), np.float32)
        contact[:, 0] = forward
        contact[:, 1] = left + np.linspace(-0.5, 0.5, points)
        ground = GroundPosition(forward, left, float(np.hypot(forward, left)), 1.0, 0.5, contact)
        box = (100 * index, 1000, 100 * index + 60, 1080)
        item = AnomalyObject(box, 4000, 3.0, 2.0, 1.0, False, ground)
        tracks.append(Track(index + 1, 10, 8, True, item))
    return tracks


def timed(build: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall and mean CPU milliseconds of ``build`` + serialisation."""
    walls, started_cpu = [], time.process_time()
    for _ in range(runs):
        started = time.perf_counter()
        serialize_message(build())
        walls.append(time.perf_counter() - started)
    cpu = (time.process_time() - started_cpu) / runs
    return statistics.median(walls) * 1e3, cpu * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    points = ObjectSettings().max_points
    tracks = frame_tracks(args.objects, points)
    dropped = list(range(1000, 1000 + args.objects))
    header = Header(stamp=Time(sec=1, nanosec=2), frame_id="base_link")
    builds: dict[str, Callable[[], object]] = {
        "obstacle_points": lambda: point_cloud_message(tracks, header),
        "object_markers": lambda: marker_array_message(
            object_markers(tracks, dropped, 0.0), header
        ),
    }
    module, why = message_module("anomaly_seg_msgs/msg/AnomalyObjectArray")
    if module is not None:
        builds["objects"] = lambda: object_array_message(
            module, tracks, dropped, header, "base_link"
        )
    print(
        f"load {os.getloadavg()[0]:.2f}; {args.objects} objects x {points} points; "
        f"{args.runs} runs (build + serialise)"
    )
    total_wall = total_cpu = 0.0
    for name, build in builds.items():
        wall, cpu = timed(build, args.runs)
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        print(f"  {name:16s} {wall:7.3f} ms wall (median)  {cpu:7.3f} ms CPU (mean)")
    if module is None:
        print(f"  objects          not measured: {why}")
    print(f"  {'all':16s} {total_wall:7.3f} ms wall           {total_cpu:7.3f} ms CPU")


if __name__ == "__main__":
    main()
