"""Helpers of the ROS tests: a real detector node in its own process, and an in-test
rclpy client that publishes images and records the node's outputs."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from anomaly_seg_ros.io.outputs import OUTPUT_TOPIC_NAMES

REPO = Path(__file__).resolve().parents[2]
OUTPUT_NAMES = OUTPUT_TOPIC_NAMES
_namespaces = itertools.count()


def camera_frame(index: int, height: int = 48, width: int = 80) -> np.ndarray:
    """A deterministic RGB frame: a gradient with a bright square that moves."""
    rng = np.random.default_rng(index)
    frame = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    frame[:, :, 1] += np.linspace(0, 150, width, dtype=np.uint8)
    top, left = 5 + index % 20, 10 + (3 * index) % 40
    frame[top : top + 12, left : left + 16] = (250, 30, 200)
    return frame


class RosClient:
    """An rclpy node in the test process, spun by a background executor."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import MultiThreadedExecutor

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("test_client", context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.02)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


class Recorder:
    """Subscribes to a node's outputs and /diagnostics; stores messages with arrival times."""

    def __init__(self, client: RosClient, namespace: str, outputs: tuple[str, ...]) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image

        from anomaly_seg_ros.ros.session import output_qos

        self.client = client
        self.namespace = namespace
        self.lock = threading.Lock()
        self.messages: dict[str, list[tuple[float, Image]]] = defaultdict(list)
        self.diagnostics: list[dict[str, str]] = []
        self.subscriptions = [
            client.node.create_subscription(
                Image,
                f"{namespace}/anomaly_seg_detector/{name}",
                lambda message, name=name: self._store(name, message),
                output_qos(depth=100),
            )
            for name in outputs
        ]
        self.subscriptions.append(
            client.node.create_subscription(
                DiagnosticArray, "/diagnostics", self._store_diagnostics, 10
            )
        )

    def _store(self, name: str, message: object) -> None:
        with self.lock:
            self.messages[name].append((time.time(), message))

    def _store_diagnostics(self, message: object) -> None:
        from anomaly_seg_ros.ros.diagnostics import status_values

        for status in message.status:
            if status.name.startswith(f"{self.namespace}/anomaly_seg"):
                with self.lock:
                    self.diagnostics.append(status_values(status))

    def count(self, name: str) -> int:
        with self.lock:
            return len(self.messages[name])

    def stamps(self, name: str) -> list[tuple[int, int, str]]:
        with self.lock:
            return [
                (m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id)
                for _, m in self.messages[name]
            ]

    def latest_diagnostics(self, after: float = 0.0, timeout: float = 5.0) -> dict[str, str]:
        """Wait for a diagnostics message that arrives later than now + ``after`` seconds."""
        with self.lock:
            seen = len(self.diagnostics)
        time.sleep(after)
        self.client.wait_for(lambda: len(self.diagnostics) > seen, timeout, "diagnostics")
        with self.lock:
            return self.diagnostics[-1]

    def close(self) -> None:
        for subscription in self.subscriptions:
            self.client.node.destroy_subscription(subscription)


class NodeProcess:
    """``python -m anomaly_seg_ros.ros.node`` in its own namespace, as a subprocess."""

    def __init__(
        self,
        parameters: dict[str, object],
        namespace: str,
        module: str = "anomaly_seg_ros.ros.node",
        environment: dict[str, str] | None = None,
    ) -> None:
        arguments = [sys.executable, "-m", module, "--ros-args"]
        arguments += ["-r", f"__ns:={namespace}"]
        for name, value in parameters.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            arguments += ["-p", f"{name}:={text}"]
        environment = {
            **os.environ,
            **(environment or {}),
            # This checkout first; then message packages built beside it (sourced setups).
            "PYTHONPATH": os.pathsep.join(
                part
                for part in (
                    str(REPO),
                    (environment or {}).get("PYTHONPATH", ""),
                    os.environ.get("PYTHONPATH", ""),
                )
                if part
            ),
            "PYTHONUNBUFFERED": "1",
        }
        self.process = subprocess.Popen(
            arguments,
            cwd=REPO,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = ""

    def stop(self) -> int:
        """SIGINT (like Ctrl-C), then the exit code; output is kept in ``self.output``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.output, _ = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.output, _ = self.process.communicate()
        return self.process.returncode


class NodeUnderTest:
    """A running node with a publisher to its input and a recorder of its outputs."""

    def __init__(
        self,
        client: RosClient,
        parameters: dict[str, object],
        outputs: tuple[str, ...] = OUTPUT_NAMES,
        environment: dict[str, str] | None = None,
    ) -> None:
        from sensor_msgs.msg import CompressedImage, Image

        from anomaly_seg_ros.ros.session import input_qos

        self.client = client
        self.namespace = f"/t{os.getpid()}_{next(_namespaces)}"
        self.process = NodeProcess(parameters, self.namespace, environment=environment)
        compressed = bool(parameters.get("input_compressed", False))
        topic = f"{self.namespace}/image" + ("/compressed" if compressed else "")
        message_type = CompressedImage if compressed else Image
        self.publisher = client.node.create_publisher(
            message_type, topic, input_qos("reliable", 100)
        )
        self.recorder = Recorder(client, self.namespace, outputs)
        self.input_topic = topic
        # With qos_profile auto (the default) the node first subscribes best effort and
        # re-subscribes reliably once it sees this reliable publisher; a frame published in
        # between can be lost, so the node counts as connected only after that switch.
        self.reliable_input = parameters.get("qos_profile", "auto") in ("auto", "reliable")
        self._wait_until_connected()

    def _input_is_reliable(self) -> bool:
        from rclpy.qos import ReliabilityPolicy

        subscriptions = self.client.node.get_subscriptions_info_by_topic(self.input_topic)
        return bool(subscriptions) and all(  # the best-effort one is gone, too
            info.qos_profile.reliability == ReliabilityPolicy.RELIABLE for info in subscriptions
        )

    def _wait_until_connected(self) -> None:
        def connected() -> bool:
            if self.process.process.poll() is not None:
                code = self.process.stop()
                raise AssertionError(f"node exited early ({code}):\n{self.process.output}")
            if self.reliable_input and not self._input_is_reliable():
                return False
            return self.publisher.get_subscription_count() > 0 and all(
                subscription.get_publisher_count() > 0
                for subscription in self.recorder.subscriptions
            )

        self.client.wait_for(connected, 60.0, "the node to connect")

    def close(self) -> int:
        code = self.process.stop()
        self.recorder.close()
        self.client.node.destroy_publisher(self.publisher)
        return code
