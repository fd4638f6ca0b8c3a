"""The object stage's time per frame at 1024×2048, as a share of the whole frame (prints;
asserts nothing). Goal (issue 23): components + association + projection ≤ 5 ms.

Frames: a synthetic drive (seed 7) rendered at the camera size, run through the bundled
demo model (ONNX Runtime; the network at its own input size, the maps at camera size), so
the masks hold the model's real components. Per frame the script times

* the whole frame: ``Detector.detect(rgb, road_region=True)`` (preprocess, inference,
  host maps, road region);
* the object stage: ``ObjectLayer.process`` (components, ground projection, filters,
  association) on that frame's mask, score and road region, with the drive's camera;
* the node's messages of that frame (where rclpy imports): building and serialising
  ``~/obstacle_points``, ``~/object_markers`` and, when ``anomaly_seg_msgs`` is built and
  sourced, ``~/objects`` (benchmarks/object_messages.py times them per message);
* a bad case: 1/16 of all pixels set as isolated specks (``max_components`` bounds it).

Wall and CPU (process) time side by side, with the load average, since the machine is
shared. ``--frames`` frames, each timed ``--repeat`` times (median).

    python benchmarks/objects.py [--frames 6] [--repeat 5] [--camera 1024 2048]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.model.bundled import calibrated_config, default_model_path
from anomaly_seg_ros.objects import ObjectLayer, ObjectSettings
from demo.drive import (
    DriveSpec,
    camera_model,
    camera_mount,
    drive_camera,
    render_drive,
)


def _timed(function, repeat: int) -> tuple[float, float, object]:
    """Median wall and CPU milliseconds of ``function()`` over ``repeat`` calls."""
    walls, cpus = [], []
    value = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        value = function()
        walls.append((time.perf_counter() - wall) * 1e3)
        cpus.append((time.process_time() - cpu) * 1e3)
    return statistics.median(walls), statistics.median(cpus), value


def message_builder():
    """``build(frame)``: build and serialise the node's object messages of ``frame``;
    None without rclpy (the ROS outputs are then not part of the stage)."""
    try:
        from builtin_interfaces.msg import Time
        from rclpy.serialization import serialize_message
        from std_msgs.msg import Header

        from anomaly_seg_ros.ros.object_messages import message_module, object_message
    except ImportError:
        return None
    header = Header(stamp=Time(sec=1), frame_id="camera")
    module, _ = message_module("anomaly_seg_msgs/msg/AnomalyObjectArray")
    names = ["obstacle_points", "object_markers"] + (["objects"] if module else [])

    def build(frame):
        for name in names:
            serialize_message(object_message(name, frame, header, "base_link", 0.0, module))

    return build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--camera", type=int, nargs=2, default=(1024, 2048), metavar=("H", "W"))
    args = parser.parse_args()
    height, width = args.camera
    spec = DriveSpec(frames=args.frames, height=height, width=width, clip_frames=args.frames)
    camera = drive_camera(spec)
    model = default_model_path()
    rows: dict[str, list[tuple[float, float]]] = {"whole frame": [], "object stage": []}
    counts = []
    build_messages = message_builder()
    with Detector.from_path(model, calibrated_config(model), backend="onnxruntime") as detector:
        layer = ObjectLayer(ObjectSettings(), camera_mount(camera))
        layer.set_camera(camera_model(camera))
        for index, frame in enumerate(render_drive(spec)):
            wall, cpu, result = _timed(
                lambda frame=frame: detector.detect(frame.image, road_region=True), args.repeat
            )
            rows["whole frame"].append((wall, cpu))
            stamp = [index * 10**8]

            def objects(result=result, stamp=stamp):
                stamp[0] += 1  # time moves on: every call is a next frame for the tracker
                return layer.process(result.mask, result.score, result.road_region, stamp[0])

            wall, cpu, output = _timed(objects, args.repeat)
            rows["object stage"].append((wall, cpu))
            counts.append(len(output.objects))
            if build_messages is not None:
                wall, cpu, _ = _timed(lambda o=output: build_messages(o), args.repeat)
                rows.setdefault("messages (ROS)", []).append((wall, cpu))
        specks = np.zeros((height, width), bool)
        specks[::4, ::4] = True
        score = specks.astype(np.float32)
        wall, cpu, output = _timed(lambda: layer.process(specks, score, None, 10**12), 3)
        rows["bad case: 131k specks"] = [(wall, cpu)]
    print(
        f"camera {height}x{width}, model {model.name}, {args.frames} frames × {args.repeat}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; objects per frame "
        f"{statistics.mean(counts):.1f}; bad case warning: {output.warnings}"
    )
    print(f"{'':24s} {'wall ms':>9s} {'CPU ms':>9s}")
    for name, values in rows.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        print(f"{name:24s} {wall:9.2f} {cpu:9.2f}")
    whole = statistics.median(v[0] for v in rows["whole frame"])
    stages = [name for name in ("object stage", "messages (ROS)") if name in rows]
    stage = sum(statistics.median(v[0] for v in rows[name]) for name in stages)
    whole_cpu = statistics.median(v[1] for v in rows["whole frame"])
    stage_cpu = sum(statistics.median(v[1] for v in rows[name]) for name in stages)
    print(
        f"{' + '.join(stages)}: {stage:.2f} ms wall; share of the frame "
        f"{100 * stage / whole:.1f} % wall, "
        f"{100 * stage_cpu / whole_cpu:.1f} % CPU"
    )


if __name__ == "__main__":
    main()
