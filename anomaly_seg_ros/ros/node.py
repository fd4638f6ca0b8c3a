"""The detector node: camera image in; labels, anomaly score, mask and overlay out.

Threads: the executor (main thread) runs the subscription callback, the diagnostics timer
and parameter changes; a worker thread runs decoding, inference and publication. They
meet in a one-slot mailbox, so when frames come faster than inference the newest wins,
the others are dropped and counted, and latency never grows with the input rate.

Start it with ``ros2 launch anomaly_seg_ros detector.launch.py`` or directly:
``detector_node --ros-args --params-file config/detector.yaml -r image:=/camera/image_raw``.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image

from anomaly_seg_ros.backends import resolve_backend
from anomaly_seg_ros.config import NODE_NAME
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.errors import AnomalySegError, ConfigError, InputError, ModelError
from anomaly_seg_ros.io.messages import decode_message
from anomaly_seg_ros.io.outputs import OUTPUT_TOPICS, detector_outputs, result_images
from anomaly_seg_ros.models import resolve_model_path
from anomaly_seg_ros.ros.diagnostics import (
    DetectorDescription,
    diagnostic_array,
    diagnostic_status,
)
from anomaly_seg_ros.ros.mailbox import LatestMailbox, MailboxClosedError
from anomaly_seg_ros.ros.messages import raw_to_message
from anomaly_seg_ros.ros.parameters import NodeSettings, declare_parameters, updated_settings
from anomaly_seg_ros.ros.session import input_qos, output_qos, ros_session
from anomaly_seg_ros.ros.statistics import FrameStatistics, StatisticsSnapshot

#: Seconds between repeated warnings about bad input or failing inference.
WARN_THROTTLE_SEC = 5.0


@dataclass(frozen=True)
class Frame:
    """An input message and when it arrived (``time.perf_counter``)."""

    message: Image | CompressedImage
    received_at: float


class DetectorNode(Node):
    """Subscribes to ``image`` (or ``<image>/compressed``) and publishes ``~/<output>``.

    :raises ModelError: the model is missing or does not fit its sidecar/statistics.
    :raises BackendError: the chosen backend cannot start.
    :raises ConfigError: a parameter given at start-up is invalid.
    """

    def __init__(self, **node_options: object) -> None:
        super().__init__(NODE_NAME, **node_options)
        self.settings: NodeSettings = declare_parameters(self)
        model_path = resolve_model_path(self.settings.model_path)
        backend_options = {}
        if self.settings.engine_cache_dir and (
            resolve_backend(self.settings.backend, model_path) == "tensorrt"
        ):
            backend_options["cache_dir"] = Path(self.settings.engine_cache_dir)
        self.detector = Detector.from_path(
            model_path,
            config=self.settings.detector,
            backend=self.settings.backend,
            sml_stats=self.settings.sml_stats_path or None,
            host_threads=self.settings.host_threads,
            **backend_options,
        )
        self._check_input_size()
        self.description = DetectorDescription(
            name=f"{self.get_fully_qualified_name()}: detector",
            backend=self.detector.backend.describe(),
            model=str(model_path),
            input_size=self.detector.info.input_size,
        )
        self.statistics = FrameStatistics()
        self._previous_report: StatisticsSnapshot | None = None
        self._mailbox: LatestMailbox[Frame] = LatestMailbox()

        self._outputs = {
            topic.name: self.create_publisher(Image, f"~/{topic.name}", output_qos())
            for topic in OUTPUT_TOPICS
        }
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        qos = input_qos(self.settings.qos_profile, self.settings.qos_depth)
        if self.settings.input_compressed:
            # image_transport convention: the compressed stream is "<image topic>/compressed",
            # after remapping, so remapping `image` is enough for either input.
            topic = self.resolve_topic_name("image") + "/compressed"
            self._subscription = self.create_subscription(
                CompressedImage, topic, self._on_image, qos
            )
        else:
            self._subscription = self.create_subscription(Image, "image", self._on_image, qos)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_timer(self.settings.diagnostics_period, self._publish_diagnostics)

        self._worker = threading.Thread(target=self._work, name="inference", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"detecting on {self._subscription.topic_name} with {self.description.backend}, "
            f"model {model_path} (input {self.description.input_size[0]}x"
            f"{self.description.input_size[1]}, score {self.settings.detector.score_type})"
        )

    def _on_image(self, message: Image | CompressedImage) -> None:
        self.statistics.received()
        if self._mailbox.put(Frame(message, time.perf_counter())):
            self.statistics.dropped()

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        changes = {parameter.name: parameter.value for parameter in parameters}
        try:
            settings = updated_settings(self.settings, changes)
            if settings.detector != self.detector.config:
                self.detector.config = settings.detector  # validated against the model too
        except (ConfigError, ModelError) as error:
            return SetParametersResult(successful=False, reason=str(error))
        self.settings = settings
        self.get_logger().info(f"parameters changed: {changes}")
        return SetParametersResult(successful=True)

    def _wanted_outputs(self, settings: NodeSettings) -> list[str]:
        """Outputs switched on that somebody subscribes to; nothing else is computed."""
        return [
            topic.name
            for topic in OUTPUT_TOPICS
            if getattr(settings, topic.toggle)
            and self._outputs[topic.name].get_subscription_count() > 0
        ]

    def _work(self) -> None:
        while True:
            try:
                frame = self._mailbox.take()
            except MailboxClosedError:
                return
            if frame is None:
                continue
            try:
                self._process(frame)
            except InputError as error:
                self.statistics.malformed(str(error))
                self.get_logger().warning(
                    f"skipping malformed image: {error}", throttle_duration_sec=WARN_THROTTLE_SEC
                )
            except Exception as error:
                # The worker is the thread boundary: a backend failure on one frame must
                # not stop the node; it is counted, reported and the next frame is tried.
                if not rclpy.ok(context=self.context):
                    return
                self.statistics.failed(f"{type(error).__name__}: {error}")
                self.get_logger().error(
                    f"inference failed, frame skipped: {type(error).__name__}: {error}",
                    throttle_duration_sec=WARN_THROTTLE_SEC,
                )

    def _process(self, frame: Frame) -> None:
        settings = self.settings  # one consistent snapshot for the whole frame
        started = time.perf_counter()
        rgb = decode_message(frame.message, settings.max_image_pixels)
        decoded = time.perf_counter()
        wanted = self._wanted_outputs(settings)
        if not wanted:
            return
        if settings.debug_inference_delay > 0:
            time.sleep(settings.debug_inference_delay)
        result = self.detector.detect(rgb, outputs=detector_outputs(wanted))
        detected = time.perf_counter()
        for name, raw in result_images(result, wanted).items():
            self._outputs[name].publish(raw_to_message(raw, frame.message.header))
        published = time.perf_counter()
        timings = {"queue": started - frame.received_at, "decode": decoded - started}
        timings.update(result.timings)
        timings["publish"] = published - detected
        timings["total"] = published - frame.received_at
        self.statistics.processed(timings)

    def _publish_diagnostics(self) -> None:
        snapshot = self.statistics.snapshot()
        status = diagnostic_status(
            self.description,
            snapshot,
            self._previous_report,
            score_type=self.settings.detector.score_type,
        )
        self._previous_report = snapshot
        self._diagnostics.publish(diagnostic_array(status, self.get_clock().now().to_msg()))

    def _check_input_size(self) -> None:
        """Refuse a model exported at another size than the parameters ask for."""
        expected = (self.settings.input_height, self.settings.input_width)
        actual = self.detector.info.input_size
        if any(want and want != have for want, have in zip(expected, actual)):
            self.detector.close()
            raise ModelError(
                f"the model's input size is {actual[0]}x{actual[1]} but input_height/"
                f"input_width ask for {expected[0]}x{expected[1]}; export the model at that "
                "size (`anomaly-seg export --input-size H W`) or set them to 0"
            )

    def stop(self) -> None:
        """Stop the worker (the frame in flight finishes) and release the backend."""
        self._mailbox.close()
        self._worker.join(timeout=10.0)
        self.detector.close()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``detector_node``; returns the process exit code."""
    try:
        with ros_session(args):
            try:
                node = DetectorNode()
            except AnomalySegError as error:
                rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {error}")
                return 1
            if node.settings.build_only:
                node.get_logger().info(
                    f"build_only: model ready ({node.detector.backend.describe()}); exiting"
                )
                node.stop()
                node.destroy_node()
                return 0
            try:
                rclpy.spin(node)
            finally:
                node.stop()
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
