"""Fleet evaluation throughput: frames/s with 1 and 2 Ray workers on the same bags.

Writes ``--bags`` small input bags (camera ``rgb8`` + mono8 ground truth, a road with
square obstacles), then runs ``evaluate_fleet`` with the bundled demo model on a local Ray
cluster of 1 and of 2 CPUs, alternating (1, 2, 1, 2, … for ``--repeats``), the cache off.
Per run: wall time of the two passes over the bags and frames/s from it (the Ray start,
the actors' start with the model load, and the report are listed apart), the workers' CPU
seconds (sum of every bag's process time in its worker) next to the machine's busy CPU
seconds over the whole run (``/proc/stat``, every process of every helper), the peak
memory of each worker, and the load (``/proc/loadavg``) before and after::

    .venv/bin/python benchmarks/fleet.py --bags 20 --frames 5
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.evaluation.fleet import evaluate_fleet
from anomaly_seg_ros.evaluation.fleet_worker import FleetSettings, ModelPackage
from anomaly_seg_ros.io.bags import IMAGE_TYPE, create_bag, typestore
from anomaly_seg_ros.io.image import array_to_raw
from anomaly_seg_ros.io.messages import bag_image
from anomaly_seg_ros.model.bundled import default_model_path

CAMERA, LABEL = "/camera/image_raw", "/ground_truth"


def write_bags(folder: Path, bags: int, frames: int, height: int, width: int) -> None:
    """``bags`` rosbag2 (MCAP) folders of ``frames`` camera + label frames each."""
    store = typestore()
    image_class = store.types[IMAGE_TYPE]
    header_class = store.types["std_msgs/msg/Header"]
    time_class = store.types["builtin_interfaces/msg/Time"]
    rng = np.random.default_rng(0)
    for number in range(bags):
        with create_bag(folder / f"drive_{number:03d}") as writer:
            camera = writer.add_connection(CAMERA, IMAGE_TYPE, typestore=store)
            truth = writer.add_connection(LABEL, IMAGE_TYPE, typestore=store)
            for index in range(frames):
                rgb = np.full((height, width, 3), (90, 90, 100), np.uint8)
                rgb[: height // 3] = (120, 170, 230)
                rgb += rng.integers(0, 20, rgb.shape, dtype=np.uint8)
                label = np.zeros((height, width), np.uint8)
                label[: height // 10] = 255
                side = int(rng.integers(12, height // 4))
                top = int(rng.integers(height // 2, height - side))
                left = int(rng.integers(0, width - side))
                rgb[top : top + side, left : left + side] = rng.integers(0, 255, 3)
                label[top : top + side, left : left + side] = 1
                stamp = (100 + number) * 10**9 + index * 10**8
                header = header_class(
                    stamp=time_class(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="cam"
                )
                for connection, array, encoding in (
                    (camera, rgb, "rgb8"),
                    (truth, label, "mono8"),
                ):
                    message = bag_image(image_class, array_to_raw(array, encoding), header)
                    writer.write(connection, stamp, store.serialize_cdr(message, IMAGE_TYPE))


def busy_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores, every process)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(bags: list[Path], workers: int, model: ModelPackage, work: Path) -> dict[str, float]:
    import ray

    begin = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter() - begin
    try:
        busy, before = busy_cpu_seconds(), load()
        settings = FleetSettings(label_topic=LABEL, image_topic=CAMERA)
        out = Path(tempfile.mkdtemp(dir=work)) / "report"
        fleet = evaluate_fleet(
            bags, out, settings, model, workers=workers, cache_dir=out.parent / "cache",
            progress=False,
        )  # fmt: skip
        wall = fleet.timings["read"] + fleet.timings["details"]
        busy = busy_cpu_seconds() - busy
    finally:
        ray.shutdown()
    frames = sum(state.counts["frames"] for state in fleet.states.values())
    read_cpu = sum(state.cpu_seconds for state in fleet.states.values())
    details_cpu = sum(details.cpu_seconds for details in fleet.details.values())
    worker_cpu = read_cpu + details_cpu
    peaks: dict[str, float] = {}
    for state in fleet.states.values():
        peaks[state.worker] = max(peaks.get(state.worker, 0.0), state.peak_rss_mb)
    return {
        "workers": workers,
        "ray_start_s": started,
        "workers_s": fleet.timings["workers"],
        "report_s": fleet.timings["report"],
        "total_s": fleet.seconds,
        "wall_s": wall,
        "frames": frames,
        "frames_per_s": frames / wall,
        "worker_cpu_s": worker_cpu,
        "read_cpu_s": read_cpu,
        "details_cpu_s": details_cpu,
        "read_s": fleet.timings["read"],
        "details_s": fleet.timings["details"],
        "machine_busy_cpu_s": busy,
        "peak_mb_per_worker": max(peaks.values()),
        "load_before": before,  # type: ignore[dict-item]
        "load_after": load(),  # type: ignore[dict-item]
        "evaluated": len(fleet.states),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bags", type=int, default=20)
    parser.add_argument("--frames", type=int, default=5, help="frames per bag")
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=1, help="(1 worker, 2 workers) pairs")
    args = parser.parse_args()
    model_path = default_model_path()
    model = ModelPackage.from_path(model_path, DetectorConfig(), "onnxruntime")
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as folder:
        work = Path(folder)
        write_bags(work / "bags", args.bags, args.frames, args.height, args.width)
        bags = sorted((work / "bags").iterdir())
        print(f"{len(bags)} bags x {args.frames} frames of {args.height}x{args.width}, "
              f"model {model_path.name}, cpus {os.cpu_count()}, load {load()}")  # fmt: skip
        rows = []
        for _ in range(args.repeats):
            for workers in (1, 2):
                rows.append(run(bags, workers, model, work))
                row = rows[-1]
                print(
                    f"workers {workers}: {row['frames']:.0f} frames in {row['wall_s']:.1f} s = "
                    f"{row['frames_per_s']:.2f} frames/s (pass 1 {row['read_s']:.1f} s, CPU "
                    f"{row['read_cpu_s']:.1f} s; pass 2 {row['details_s']:.1f} s, CPU "
                    f"{row['details_cpu_s']:.1f} s); worker CPU {row['worker_cpu_s']:.1f} s, "
                    f"machine busy CPU {row['machine_busy_cpu_s']:.1f} s; peak "
                    f"{row['peak_mb_per_worker']:.0f} MB/worker; Ray start "
                    f"{row['ray_start_s']:.1f} s, workers + model {row['workers_s']:.1f} s, "
                    f"report {row['report_s']:.1f} s; load {row['load_before']} -> "
                    f"{row['load_after']}",
                    flush=True,
                )
        one = [r["frames_per_s"] for r in rows if r["workers"] == 1]
        two = [r["frames_per_s"] for r in rows if r["workers"] == 2]
        ratios = [b / a for a, b in zip(one, two)]
        print(f"speed-up 2 vs 1 worker per pair: {', '.join(f'{r:.2f}x' for r in ratios)}")


if __name__ == "__main__":
    main()
