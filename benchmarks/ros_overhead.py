"""ROS overhead of the detector node: DDS end-to-end latency vs a direct Detector.detect.

Usage::

    python benchmarks/ros_overhead.py [--model M.onnx] [--sizes 512x1024 1024x2048]
        [--frames 10] [--overload-seconds 5] [--rate 100] [--json out.json] [--trace t.txt]

Per camera size: the same frames go (a) straight through ``Detector.detect`` with the
node's detector settings (the model's calibrated parameters file, as the node loads it)
and the colour and overlay images requested (what the node computes when every output has
a subscriber), and (b) through a ``detector_node`` in its own process: published as rgb8,
timed until the fifth output arrives here. Frames are sent one at a time, so (b) is
latency, not throughput. Ratio = median(b) / median(a); the goal is <= 1.10.

What (b) times is the node, not this script's Python: the camera side publishes each frame
as CDR bytes serialised before the clock starts (what a C++ camera driver hands the
middleware; rclpy's conversion of a 6 MB Python message, ~5 ms, is not the node's cost),
the subscriber takes the outputs as CDR bytes (as RViz or a C++ consumer would), and one
thread spins them (a ``SingleThreadedExecutor``: rclpy's ``MultiThreadedExecutor`` spun
its wait loop while a callback of the same callback group ran, 50-110 ms of CPU per round
trip on 2 cores, taken from the node under test; rclpy issues 1223, 1452). This process
keeps its freed frame buffers as the node does (``keep_freed_memory``), so that the direct
side runs the detector with the same allocator as the node and the ratio stays the cost of
ROS and DDS (without it the direct side pays ~4,000 more page faults per frame). Also
printed: CPU milliseconds per frame of the direct detect, of the node process and of
this process while it plays camera and subscriber (the load sways them less), and the
node's page faults per frame. Then an
overload run publishes at ``--rate`` Hz and reports the output rate, drops (from
/diagnostics) and the node's resident memory once per second.

``--trace FILE`` runs the node through ``benchmarks/traced_node.py`` and prints where a
round trip's time goes (median milliseconds of each step: camera publish, delivery to the
node, decode + detect, drawing, each publication, delivery of the overlay back here).

Without ``--model`` a random-weight DeepLabv3+ MobileNetV2 is exported per camera size with
the network input equal to the camera size (inference at full resolution, as on the car).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(120, 200)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import rclpy  # noqa: E402  (after the ROS environment above)
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from traced_node import TRACE_VARIABLE, summarise, trace_event  # noqa: E402

from anomaly_seg_ros.detector import Detector  # noqa: E402
from anomaly_seg_ros.ros.allocator import keep_freed_memory  # noqa: E402
from anomaly_seg_ros.ros.diagnostics import status_values  # noqa: E402
from anomaly_seg_ros.ros.messages import array_to_message  # noqa: E402
from anomaly_seg_ros.ros.node import model_detector_defaults  # noqa: E402
from anomaly_seg_ros.ros.session import (  # noqa: E402
    input_qos,
    output_qos,
    use_large_image_transport,
)

#: The node process: what the ``detector_node`` console script runs.
NODE_ENTRY = (
    "import sys; from anomaly_seg_ros.ros.entry import detector_node; sys.exit(detector_node())"
)
#: The stamp (seconds) of the warm-up frame.
WARM_UP = 10_000
OUTPUTS = ("labels", "labels_color", "anomaly_score", "anomaly_mask", "overlay")


def frames(height: int, width: int, count: int) -> list[np.ndarray]:
    """Smooth random pictures at camera size, each shifted a little."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 255, (height // 16, width // 16, 3), np.uint8)
    base = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    return [np.roll(base, 7 * index, axis=1) for index in range(count)]


def camera_cdr(rgb: np.ndarray, header: Header) -> bytes:
    """The rgb8 Image of ``rgb`` as CDR bytes, which ``Publisher.publish`` sends as they are."""
    return bytes(serialize_message(array_to_message(rgb, "rgb8", header)))


def export_model(folder: Path, height: int, width: int) -> Path:
    import torch

    from anomaly_seg_ros.networks import create_network
    from anomaly_seg_ros.networks.export import export_onnx

    torch.manual_seed(0)
    path = folder / f"mobilenetv2_{height}x{width}.onnx"
    export_onnx(
        create_network("mobilenetv2", 19),
        path,
        input_size=(height, width),
        class_names=[f"c{i}" for i in range(19)],
        check=False,
    )
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = process_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def page_faults(pid: int) -> int:
    """Minor page faults of a process so far (fresh pages it touched: zeroed by the kernel)."""
    return int(process_stat(pid)[7])


def process_stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


class Client:
    """Publishes frames to the node and waits for its outputs."""

    def __init__(self, namespace: str, trace: Path | None = None) -> None:
        self.trace = trace
        self.node = rclpy.create_node("ros_overhead_client")
        self.lock = threading.Condition()
        self.arrived: dict[str, list[tuple[float, int]]] = {name: [] for name in OUTPUTS}
        self.diagnostics: list[dict[str, str]] = []
        for name in OUTPUTS:
            # raw=True: the CDR bytes, not a Python message, as a C++ consumer (RViz) would
            # take them; deserialising 24 MB in Python would be this client's cost, not
            # the node's.
            self.node.create_subscription(
                Image,
                f"{namespace}/anomaly_seg_detector/{name}",
                lambda data, name=name: self._store(name, data),
                output_qos(depth=10),
                raw=True,
            )
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diagnostics, 10)
        self.publisher = self.node.create_publisher(
            Image, f"{namespace}/image", input_qos("reliable", 1)
        )
        # One thread: the callbacks only note an arrival (see the module docstring).
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _store(self, name: str, data: bytes) -> None:
        # CDR: 4-byte encapsulation header, then header.stamp.sec (int32, little endian)
        (stamp_sec,) = struct.unpack_from("<i", data, 4)
        if self.trace:
            trace_event(self.trace, "client", f"arrived_{name}", stamp_sec)
        with self.lock:
            self.arrived[name].append((time.perf_counter(), stamp_sec))
            self.lock.notify_all()

    def _diagnostics(self, message: DiagnosticArray) -> None:
        for status in message.status:
            if "anomaly_seg_detector" in status.name:
                self.diagnostics.append(status_values(status))

    def wait_connected(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.publisher.get_subscription_count() == 0 or any(
            s.get_publisher_count() == 0 for s in self.node.subscriptions
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("the node did not connect")
            time.sleep(0.05)

    def round_trip(self, rgb: np.ndarray, index: int, attempts: int = 1) -> float:
        """Seconds from publishing a frame until all five outputs of it arrived."""
        header = Header(frame_id="bench")
        header.stamp.sec = index
        message = camera_cdr(rgb, header)  # before the clock starts, as a camera driver's
        for _ in range(attempts):
            self._trace("publish_start", index)
            started = time.perf_counter()
            self.publisher.publish(message)
            self._trace("publish_end", index)
            with self.lock:
                done = self.lock.wait_for(
                    lambda: all(any(s == index for _, s in self.arrived[n]) for n in OUTPUTS),
                    60.0 if attempts == 1 else 10.0,
                )
            if done:
                self._trace("all_arrived", index)
                arrivals = [t for n in OUTPUTS for t, s in self.arrived[n] if s == index]
                return max(arrivals) - started
        raise TimeoutError(f"frame {index} did not come back")

    def _trace(self, event: str, index: int) -> None:
        if self.trace:
            trace_event(self.trace, "client", event, index)


def measure(model: Path, height: int, width: int, args: argparse.Namespace) -> dict:
    """Direct and through-ROS latency on the same frames, interleaved so that load from
    elsewhere on the machine hits both alike; then the overload run."""
    images = frames(height, width, args.frames)
    namespace = f"/bench{os.getpid()}"
    # As the detector_node executable starts it (entry.py: the allocator set up before the
    # imports), not ``-m anomaly_seg_ros.ros.node``.
    command = [sys.executable, "-c", NODE_ENTRY, "--ros-args"]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    if args.trace:
        command[1:3] = [str(REPO / "benchmarks" / "traced_node.py")]  # (does the same)
        environment[TRACE_VARIABLE] = str(args.trace)
    command += ["-r", f"__ns:={namespace}", "-p", f"model_path:={model}"]
    command += ["-p", "qos_profile:=reliable", "-p", f"backend:={args.backend}"]
    node = subprocess.Popen(command, cwd=REPO, env=environment)
    client = Client(namespace, args.trace)
    direct: list[float] = []
    through_ros: list[float] = []
    # CPU seconds per frame: of this process during the direct detect, of the node and of
    # this process (camera + subscriber) during a round trip; less swayed by other jobs'
    # load than the latencies, and they tell the node's cost from the benchmark's own.
    cpu: dict[str, list[float]] = {"direct": [], "node": [], "client": []}
    node_faults: list[int] = []
    me = os.getpid()
    try:
        # The node's own detector settings (the model's calibrated parameters file where it
        # has one): compared with the package defaults the node would do more host work
        # (refinement, VDE) than the direct side, and the ratio would not be the DDS cost.
        direct_config = model_detector_defaults(str(model))
        with Detector.from_path(model, direct_config, backend=args.backend) as detector:
            backend = detector.backend.describe()
            detector.detect(images[0], outputs=("labels_color", "overlay"))  # warm-up
            client.wait_connected()
            client.round_trip(images[0], WARM_UP, attempts=5)  # warm-up, discovery settles
            for index, rgb in enumerate(images):
                started, own = time.perf_counter(), cpu_seconds(me)
                detector.detect(rgb, outputs=("labels_color", "overlay"))
                direct.append(time.perf_counter() - started)
                cpu["direct"].append(cpu_seconds(me) - own)
                own, node_before = cpu_seconds(me), cpu_seconds(node.pid)
                faults_before = page_faults(node.pid)
                through_ros.append(client.round_trip(rgb, index))
                cpu["client"].append(cpu_seconds(me) - own)
                cpu["node"].append(cpu_seconds(node.pid) - node_before)
                node_faults.append(page_faults(node.pid) - faults_before)
        overload = overload_run(client, node.pid, images, args)
    finally:
        node.send_signal(signal.SIGINT)
        node.wait(timeout=30)
        client.executor.shutdown()
        client.node.destroy_node()
    direct_median = float(np.median(direct))
    ros_median = float(np.median(through_ros))
    return {
        "camera": f"{height}x{width}",
        "backend": backend,
        "direct_ms_median": round(direct_median * 1e3, 1),
        "direct_ms_p95": round(float(np.percentile(direct, 95)) * 1e3, 1),
        "ros_ms_median": round(ros_median * 1e3, 1),
        "ros_ms_p95": round(float(np.percentile(through_ros, 95)) * 1e3, 1),
        "ratio": round(ros_median / direct_median, 3),
        **{f"{who}_cpu_ms_median": round(float(np.median(v)) * 1e3, 1) for who, v in cpu.items()},
        "node_page_faults_median": int(np.median(node_faults)),
        **overload,
        **({"trace_ms": summarise(args.trace, frozenset({WARM_UP}))} if args.trace else {}),
    }


def overload_run(
    client: Client, pid: int, images: list[np.ndarray], args: argparse.Namespace
) -> dict:
    """Publish at ``args.rate`` Hz; output rate, drops and the node's RSS per second."""
    messages = [camera_cdr(rgb, Header(frame_id="bench")) for rgb in images]
    before = len(client.arrived["labels"])
    rss = [round(rss_mib(pid), 1)]
    started = time.perf_counter()
    sent = 0
    while time.perf_counter() - started < args.overload_seconds:
        client.publisher.publish(messages[sent % len(messages)])
        sent += 1
        if sent % max(1, int(args.rate)) == 0:
            rss.append(round(rss_mib(pid), 1))
        time.sleep(max(0.0, started + sent / args.rate - time.perf_counter()))
    elapsed = time.perf_counter() - started
    time.sleep(2.5)  # let the last inference finish and a diagnostics message come
    outputs = len(client.arrived["labels"]) - before
    latest = client.diagnostics[-1] if client.diagnostics else {}
    return {
        "overload_sent_hz": round(sent / elapsed, 1),
        "overload_output_hz": round(outputs / elapsed, 2),
        "overload_dropped_total": int(latest.get("frames_dropped", -1)),
        "node_total_p50_ms": latest.get("latency_total_p50_ms"),
        "node_rss_mib_per_second": rss,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="model for all sizes (default: exported)")
    parser.add_argument("--sizes", nargs="+", default=["512x1024", "1024x2048"])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--overload-seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--trace", type=Path, help="trace each frame's steps to this file")
    args = parser.parse_args()
    keep_freed_memory()  # before any thread starts, as the node does (see the docstring)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    # This process plays the camera; the node sets the same profile up by itself.
    print(f"# Fast DDS profile: {use_large_image_transport()}")
    results = []
    rclpy.init()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for size in args.sizes:
                height, width = (int(v) for v in size.split("x"))
                model = args.model or export_model(Path(scratch), height, width)
                result = measure(model, height, width, args)
                results.append(result)
                print(json.dumps(result), flush=True)
    finally:
        rclpy.try_shutdown()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
