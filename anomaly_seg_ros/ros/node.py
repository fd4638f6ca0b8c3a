"""The detector node: camera image in; labels, anomaly score, mask and overlay out.

Threads: the executor (main thread) runs the subscription callback, the diagnostics timer
and parameter changes; a worker thread runs decoding, inference and publication. They
meet in a one-slot mailbox, so when frames come faster than inference the newest wins,
the others are dropped and counted, and latency never grows with the input rate. Frames
arrive as CDR bytes (``raw=True``) and only the one the worker takes is deserialised (a
view of the bytes; rclpy's conversion to a Python message takes ~7 ms per 6 MB frame in the
executor, holding the GIL, for every frame, dropped or not). A sender
thread publishes labels, score and mask while the worker draws the colour and overlay
images (at 1024x2048 the five outputs are 25 MB that rclpy and Fast DDS copy several times).
Freed frame buffers are kept for the next frame, not faulted in afresh
(:mod:`anomaly_seg_ros.ros.allocator`, set up by the executables before their imports).

One managed node (:class:`DetectorNode`, an rclpy ``LifecycleNode``), two executables:
``detector_node`` (this module) configures and activates itself at start (``autostart``
true); ``detector_lifecycle_node`` (:mod:`anomaly_seg_ros.ros.lifecycle_node`) starts
unconfigured and is driven by ``ros2 lifecycle set`` or a lifecycle manager.

Start it with ``ros2 launch anomaly_seg_ros detector.launch.py`` or directly:
``detector_node --ros-args --params-file config/detector.yaml -r image:=/camera/image_raw``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.lifecycle import (
    LifecycleNode,
    LifecyclePublisher,
    LifecycleState,
    TransitionCallbackReturn,
)
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.qos import ReliabilityPolicy
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from sensor_msgs.msg import CompressedImage, Image

from anomaly_seg_ros.backends import resolve_backend
from anomaly_seg_ros.config import NODE_NAME, DetectorConfig
from anomaly_seg_ros.detector import Detector, Result
from anomaly_seg_ros.errors import AnomalySegError, ConfigError, InputError, ModelError
from anomaly_seg_ros.io.bags import COMPRESSED_TYPE, IMAGE_TYPE, cdr_message, typestore
from anomaly_seg_ros.io.messages import decode_message, image_cdr, stamp_ns
from anomaly_seg_ros.io.outputs import (
    ON_REQUEST,
    OUTPUT_TOPICS,
    detector_outputs,
    result_images,
)
from anomaly_seg_ros.model.bundled import calibrated_config, resolve_model_path
from anomaly_seg_ros.ros.allocator import keep_freed_memory
from anomaly_seg_ros.ros.diagnostics import (
    DetectorDescription,
    diagnostic_array,
    diagnostic_status,
    inactive_status,
)
from anomaly_seg_ros.ros.mailbox import LatestMailbox, MailboxClosedError
from anomaly_seg_ros.ros.messages import ros_header
from anomaly_seg_ros.ros.object_outputs import ObjectOutputs, subscribed
from anomaly_seg_ros.ros.parameters import (
    SPECS,
    NodeSettings,
    ParameterServices,
    declare_parameters,
    flatten,
    own_changes,
    settings_from_values,
    unknown_overrides,
)
from anomaly_seg_ros.ros.serialized import publish_cdr
from anomaly_seg_ros.ros.session import (
    StopSignals,
    check_params_files,
    input_qos,
    matching_profile,
    output_qos,
    ros_session,
)
from anomaly_seg_ros.ros.shared_memory import remove_stale_segments
from anomaly_seg_ros.ros.statistics import FrameStatistics, ProblemThrottle, StatisticsSnapshot

RCLError = rclpy_implementation.RCLError
#: How often ``qos_profile: auto`` looks at the camera's publishers.
QOS_CHECK_PERIOD_SEC = 0.5
#: Seconds between repeated warnings of one kind of problem (bad input, failing inference).
WARN_THROTTLE_SEC = 5.0
#: Longest wait of the spin loop: how soon a stop signal is noticed.
SPIN_PERIOD_SEC = 0.1
#: How long a stop waits for the frame in flight before giving up on the worker.
WORKER_JOIN_SEC = 30.0
#: The ``autostart`` parameter (declared by the node; its default is the executable's).
AUTOSTART_DESCRIPTION = (
    "configure and activate at start (detector_node: true, detector_lifecycle_node: false)"
)


@dataclass(frozen=True)
class Frame:
    """An input message's CDR bytes, its type and when it arrived (``time.perf_counter``)."""

    cdr: bytes
    msgtype: str
    topic: str
    received_at: float


def model_detector_defaults(configured: str) -> DetectorConfig:
    """Detector settings where the user set none: the model's calibrated parameters file
    (``models/demo/demo.params.yaml`` for the bundled model), else the package defaults.
    A model that cannot be found yet is reported when it is loaded, not here."""
    try:
        return calibrated_config(resolve_model_path(configured)) or DetectorConfig()
    except ModelError:
        return DetectorConfig()


class DetectorNode(LifecycleNode):
    """Subscribes to ``image`` (or ``<image>/compressed``) and publishes ``~/<output>``.

    A managed node: ``configure`` loads the model and creates the publishers, ``activate``
    subscribes and starts the worker (and ``/diagnostics``), ``deactivate``, ``cleanup`` and
    ``shutdown`` undo them. With ``autostart`` (``detector_node``) :meth:`start` runs
    configure and activate right after construction; without it
    (``detector_lifecycle_node``) a lifecycle manager or ``ros2 lifecycle set`` does.
    Start-up parameters (``model_path``, ``backend``, ...) can change while unconfigured.

    :param autostart: the default of the ``autostart`` parameter.
    :raises ConfigError: a parameter given at start-up is invalid.
    """

    def __init__(self, *, autostart: bool = True, **node_options: Any) -> None:
        super().__init__(NODE_NAME, start_parameter_services=False, **node_options)
        self.autostart = self._declare_autostart(autostart)
        self.settings: NodeSettings = declare_parameters(self, model_detector_defaults)
        self.detector: Detector | None = None
        self.description: DetectorDescription | None = None
        self.statistics = FrameStatistics()
        #: Set by the shutdown transition: the spin loop ends and the process exits.
        self.shut_down = False
        #: Why the last configure failed (:meth:`start` raises it).
        self.configure_error: AnomalySegError | None = None
        self._autostarting = False
        self._previous_report: StatisticsSnapshot | None = None
        self._throttle = ProblemThrottle(WARN_THROTTLE_SEC)
        self._outputs: dict[str, LifecyclePublisher[Any]] = {}
        self._diagnostics: Publisher[Any] | None = None
        self._subscription: Subscription[Any] | None = None
        self._input = (IMAGE_TYPE, "")  # the subscription's message type and topic
        self._timer: Timer | None = None
        self._qos_timer: Timer | None = None
        self._inactive_timer: Timer | None = None
        self._input_class: type = Image
        self._subscribed_profile = ""
        self._mailbox: LatestMailbox[Frame] | None = None
        self._worker: threading.Thread | None = None
        self._sender: ThreadPoolExecutor | None = None
        self._batch_pending: dict[str, Any] | None = None
        self._batch_accepted: dict[str, Any] = {}
        self._hinted: set[tuple[str, str]] = set()
        self._objects = ObjectOutputs(self, self._throttle)  # anomaly objects (issue 23)
        self._parameter_services = ParameterServices(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        # rclpy keeps values for undeclared names without a word: a misspelt key in a
        # params file would silently leave the default in place.
        for name, hint in unknown_overrides(self._parameter_overrides, self.has_parameter):
            self.get_logger().warning(
                f"parameter {name!r} (params file or -p) is not a parameter of this node "
                f"and is ignored{hint}"
            )

    def _declare_autostart(self, default: bool) -> bool:
        descriptor = ParameterDescriptor(description=AUTOSTART_DESCRIPTION, read_only=True)
        try:
            parameter: Parameter[bool] = self.declare_parameter("autostart", default, descriptor)
        except InvalidParameterTypeException as error:
            raise ConfigError(
                f"parameter autostart: {error} (expected a boolean like {default!r})"
            ) from error
        return bool(parameter.value)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """``autostart``: configure and activate now (``build_only``: configure only).

        :raises AnomalySegError: the model could not be loaded (why), or a transition failed.
        """
        self._autostarting = True
        try:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise self.configure_error or AnomalySegError("configure failed")
        finally:
            self._autostarting = False
        if not self.settings.build_only and (
            self.trigger_activate() != TransitionCallbackReturn.SUCCESS
        ):
            raise AnomalySegError("activate failed")

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._load_model()
        except AnomalySegError as error:
            self.configure_error = error
            if not self._autostarting:  # autostart: main() reports it as the fatal line
                self.get_logger().error(f"configure failed: {error}")
            return TransitionCallbackReturn.FAILURE
        self.configure_error = None
        self._open_outputs()
        self._report_inactive(True)
        backend = self.description.backend if self.description else "no model"
        self.get_logger().info(f"configured: {backend}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._report_inactive(False)
        self._open_input()
        return super().on_activate(state)  # enables the lifecycle publishers

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._close_input()
        self._report_inactive(True)
        self.get_logger().info("deactivated")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._report_inactive(False)
        self._close_outputs()
        self._unload_model()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        self.shut_down = True
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"error in state {state.label}; releasing everything")
        self.stop()
        return TransitionCallbackReturn.SUCCESS  # back to unconfigured

    def stop(self) -> None:
        """Whatever the state: stop the input (the frame in flight finishes), free the
        publishers and the model (idempotent)."""
        self._report_inactive(False)
        self._close_input()
        self._close_outputs()
        self._unload_model()

    def _report_inactive(self, on: bool) -> None:
        """While configured but not active, /diagnostics says so (the active node's
        timer takes over on activate)."""
        if self._inactive_timer is not None:
            self.destroy_timer(self._inactive_timer)
            self._inactive_timer = None
        if on:
            self._inactive_timer = self.create_timer(
                self.settings.diagnostics_period, self._publish_inactive
            )

    def _publish_inactive(self) -> None:
        if self.description is None or self._diagnostics is None:
            return
        status = inactive_status(self.description, self.statistics.snapshot(), "inactive")
        self._diagnostics.publish(diagnostic_array(status, self.get_clock().now().to_msg()))

    # --- model -----------------------------------------------------------------------

    def _load_model(self) -> None:
        """Load (for TensorRT: build or read the cached engine) the model.

        :raises AnomalySegError: missing/mismatched model, backend unavailable.
        """
        model_path = resolve_model_path(self.settings.model_path)
        backend_options = {}
        if self.settings.engine_cache_dir and (
            resolve_backend(self.settings.backend, model_path) == "tensorrt"
        ):
            backend_options["cache_dir"] = Path(self.settings.engine_cache_dir)
        detector = Detector.from_path(
            model_path,
            config=self.settings.detector,
            backend=self.settings.backend,
            sml_stats=self.settings.sml_stats_path or None,
            host_threads=self.settings.host_threads,
            **backend_options,
        )
        try:
            self._check_input_size(detector)
        except ModelError:
            detector.close()
            raise
        self.detector = detector
        self.description = DetectorDescription(
            name=f"{self.get_fully_qualified_name()}: detector",
            backend=detector.backend.describe(),
            model=str(model_path),
            input_size=detector.info.input_size,
        )

    def _check_input_size(self, detector: Detector) -> None:
        """Refuse a model exported at another size than the parameters ask for."""
        expected = (self.settings.input_height, self.settings.input_width)
        actual = detector.info.input_size
        if any(want and want != have for want, have in zip(expected, actual)):
            raise ModelError(
                f"the model's input size is {actual[0]}x{actual[1]} but input_height/"
                f"input_width ask for {expected[0]}x{expected[1]}; export the model at that "
                "size (`anomaly-seg export --input-size H W`) or set them to 0"
            )

    def _unload_model(self) -> None:
        if self.detector is not None:
            self.detector.close()
            self.detector = None
            self.get_logger().info("detector closed")

    # --- publishers, subscription, worker ------------------------------------------------

    def _open_outputs(self) -> None:
        self._outputs = {
            topic.name: self.create_lifecycle_publisher(Image, f"~/{topic.name}", output_qos())
            for topic in OUTPUT_TOPICS
        }
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._objects.open(self.create_lifecycle_publisher)

    def _close_outputs(self) -> None:
        for publisher in self._outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}
        self._objects.close(self.destroy_lifecycle_publisher)
        if self._diagnostics is not None:
            self.destroy_publisher(self._diagnostics)
            self._diagnostics = None

    def _open_input(self) -> None:
        self._mailbox = LatestMailbox()
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish")
        self._worker = threading.Thread(
            target=self._work, args=(self._mailbox,), name="inference", daemon=True
        )
        self._worker.start()
        topic = self.resolve_topic_name("image")
        message_class: type = Image
        msgtype = IMAGE_TYPE
        if self.settings.input_compressed:
            # image_transport convention: the compressed stream is "<image topic>/compressed",
            # after remapping, so remapping `image` is enough for either input.
            topic, message_class, msgtype = topic + "/compressed", CompressedImage, COMPRESSED_TYPE
        self._input = (msgtype, topic)
        self._input_class = message_class
        self._subscribe(self._input_profile() or "sensor_data")
        if self.settings.qos_profile == "auto":
            self._qos_timer = self.create_timer(QOS_CHECK_PERIOD_SEC, self._follow_camera_qos)
        self._objects.open_input()
        self._timer = self.create_timer(
            self.settings.diagnostics_period, self._publish_diagnostics
        )
        description = self.description
        assert description is not None and self._subscription is not None  # configured
        self.get_logger().info(
            f"detecting on {self._subscription.topic_name} with {description.backend}, "
            f"model {description.model} (input {description.input_size[0]}x"
            f"{description.input_size[1]}, score {self.settings.detector.score_type}, "
            f"threshold {self.settings.detector.threshold:g})"
        )

    def _close_input(self) -> None:
        """Stop taking frames: no more callbacks or diagnostics, the frame in flight
        finishes and is published, then the worker ends."""
        for timer in (self._timer, self._qos_timer):
            if timer is not None:
                self.destroy_timer(timer)
        self._timer = self._qos_timer = None
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
            self._subscription = None
        if self._mailbox is not None:
            self._mailbox.close()
        if self._worker is not None:
            self._worker.join(timeout=WORKER_JOIN_SEC)
            if self._worker.is_alive():
                self.get_logger().error(
                    f"the inference thread did not finish within {WORKER_JOIN_SEC:g} s; "
                    "stopping without it"
                )
            self._worker = None
        if self._sender is not None:
            self._sender.shutdown(wait=True)
            self._sender = None
        self._mailbox = None
        self._objects.close_input()

    def _input_profile(self) -> str | None:
        """The input QoS profile now: the parameter's, or for ``auto`` the one matching the
        camera's publishers (None while there are none)."""
        if self.settings.qos_profile != "auto":
            return str(self.settings.qos_profile)
        publishers = self.get_publishers_info_by_topic(self._input[1])
        return matching_profile([info.qos_profile.reliability for info in publishers])

    def _subscribe(self, profile: str) -> None:
        """(Re)create the camera subscription with ``profile``."""
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
        qos = input_qos(profile, self.settings.qos_depth)
        # raw: the callback gets the CDR bytes; the worker deserialises the frame it takes.
        self._subscription = self.create_subscription(
            self._input_class, self._input[1], self._on_image, qos, raw=True
        )
        self._subscribed_profile = profile

    def _follow_camera_qos(self) -> None:
        """``qos_profile: auto``: subscribe again when the camera's reliability changes."""
        profile = self._input_profile()
        if profile is None or profile == self._subscribed_profile or self._subscription is None:
            return
        self._subscribe(profile)
        self.get_logger().info(
            f"input QoS now {profile} (qos_profile auto), matching the publishers of "
            f"{self._input[1]}"
        )

    def _on_image(self, cdr: bytes) -> None:
        self.statistics.received()
        mailbox = self._mailbox
        msgtype, topic = self._input
        frame = Frame(cdr, msgtype, topic, time.perf_counter())
        if mailbox is not None and mailbox.put(frame):
            self.statistics.dropped()

    # --- parameters -----------------------------------------------------------------------

    def begin_batch(self, parameters: list[Parameter[Any]]) -> None:
        """One SetParameters request starts: its values are judged together."""
        self._batch_pending = own_changes(parameters)
        self._batch_accepted = {}

    def end_batch(self) -> None:
        """Apply what the request's parameters changed, as one new settings snapshot."""
        accepted, self._batch_pending, self._batch_accepted = self._batch_accepted, None, {}
        if not accepted:
            return
        try:
            self._apply(self._validated({**flatten(self.settings), **accepted}), accepted)
        except (ConfigError, ModelError) as error:
            # Only when a parameter was accepted on the strength of a later one that then
            # failed its own range check: say so rather than run half-changed.
            self.get_logger().error(f"parameters {accepted} not applied: {error}")

    def _validated(self, values: dict[str, Any]) -> NodeSettings:
        settings = settings_from_values(values)
        if self.detector is not None:
            self.detector.check_config(settings.detector)
        return settings

    def _apply(self, settings: NodeSettings, changes: dict[str, Any]) -> None:
        if self.detector is not None and settings.detector != self.detector.config:
            self.detector.config = settings.detector
        self.settings = settings
        self.get_logger().info(f"parameters changed: {changes}")

    def _frozen(self, changes: dict[str, Any]) -> list[str]:
        """Start-up parameters among ``changes`` that would change while configured."""
        if self.detector is None:
            return []
        current = flatten(self.settings)
        return sorted(n for n, v in changes.items() if SPECS[n].read_only and v != current[n])

    def _on_set_parameters(self, parameters: list[Parameter[Any]]) -> SetParametersResult:
        changes = own_changes(parameters)
        if not changes:
            return SetParametersResult(successful=True)  # rclpy's own (use_sim_time ...)
        # rclpy has already refused undeclared names and values outside their descriptor's
        # range; start-up parameters change only while unconfigured (no model loaded).
        frozen = self._frozen(changes)
        if frozen:
            return SetParametersResult(
                successful=False,
                reason=f"parameter(s) {frozen} are read-only while the node is configured; "
                "change them after `ros2 lifecycle set <node> cleanup` (or restart the node)",
            )
        if self._batch_pending is None:
            try:
                settings = self._validated({**flatten(self.settings), **changes})
            except (ConfigError, ModelError) as error:
                return SetParametersResult(successful=False, reason=str(error))
            self._apply(settings, changes)
            return SetParametersResult(successful=True)
        # Inside one SetParameters request: valid together with the rest of the request
        # (boundary_width 6 with boundary_iterations 3), or valid on its own.
        for name in changes:
            self._batch_pending.pop(name, None)
        current = flatten(self.settings)
        proposed = {**self._batch_accepted, **changes}
        try:
            self._validated({**current, **proposed, **self._batch_pending})
        except (ConfigError, ModelError):
            try:
                self._validated({**current, **proposed})
            except (ConfigError, ModelError) as error:
                return SetParametersResult(successful=False, reason=str(error))
        self._batch_accepted = proposed
        return SetParametersResult(successful=True)

    # --- the worker -------------------------------------------------------------------------

    def _wanted_outputs(self, settings: NodeSettings) -> list[str]:
        """Outputs switched on that somebody subscribes to; nothing else is computed."""
        return subscribed(OUTPUT_TOPICS, self._outputs, settings)

    def _work(self, mailbox: LatestMailbox[Frame]) -> None:
        while True:
            try:
                frame = mailbox.take()
            except MailboxClosedError:
                return
            if frame is None:
                continue
            try:
                self._process(frame)
            except InputError as error:
                self.statistics.malformed(str(error))
                if self._throttle.allow(str(error)):
                    self.get_logger().warning(f"skipping malformed image: {error}")
            except Exception as error:
                # The worker is the thread boundary: a backend failure on one frame must
                # not stop the node; it is counted, reported and the next frame is tried.
                if not rclpy.ok(context=self.context):
                    return
                problem = f"{type(error).__name__}: {error}"
                self.statistics.failed(problem)
                if self._throttle.allow(problem):
                    self.get_logger().error(f"inference failed, frame skipped: {problem}")

    def _process(self, frame: Frame) -> None:
        settings = self.settings  # one consistent snapshot for the whole frame
        detector = self.detector
        wanted = self._wanted_outputs(settings)
        objects = self._objects.wanted(settings)
        if not objects:
            self._objects.idle()
        if not (wanted or objects) or detector is None:
            self.statistics.skipped()  # not even decoded: nobody would see the result
            return
        sender = self._sender
        if sender is None:  # deactivated meanwhile
            return
        started = time.perf_counter()
        message = cdr_message(frame.cdr, frame.msgtype, f"on {frame.topic}")
        rgb = decode_message(message, settings.max_image_pixels)
        decoded = time.perf_counter()
        if settings.debug_inference_delay > 0:
            time.sleep(settings.debug_inference_delay)
        header = message.header  # a rosbags Header: the outputs are serialised here
        computed = [name for name in wanted if name not in ON_REQUEST]
        road_region = bool(objects) and settings.objects.on_road_only
        result = detector.detect(rgb, road_region=road_region)
        objects_seconds = 0.0
        if objects:
            objects_started = time.perf_counter()
            self._objects.process(result, ros_header(header), stamp_ns(message), settings, objects)
            objects_seconds = time.perf_counter() - objects_started
        # Each output goes to the sender thread as soon as it exists: labels, score and mask
        # are published while the colours are drawn here, the colours while the overlay is
        # drawn (from them), and only the last one is waited for. Both threads run without
        # the interpreter lock for most of it (OpenCV here; numpy and rcl there).
        sent = [sender.submit(self._publish, result, computed, header)] if computed else []
        try:
            for name in detector_outputs(wanted):  # labels_color before overlay
                result = detector.render(rgb, result, (name,))
                sent.append(sender.submit(self._publish, result, [name], header))
        finally:
            drawn_at = time.perf_counter()
            wait(sent)
        for sending in sent:
            sending.result()  # raises what the sender raised
        published = time.perf_counter()
        timings = {"queue": started - frame.received_at, "decode": decoded - started}
        timings.update(result.timings)
        if objects:  # components + tracks + ground + messages + publish (docs/objects_ros.md)
            timings["objects"] = objects_seconds
        # What publishing adds after the last picture is drawn (not hidden behind drawing)
        timings["publish"] = published - drawn_at
        timings["total"] = published - frame.received_at
        self.statistics.processed(timings)

    def _publish(self, result: Result, names: list[str], header: Any) -> None:
        """Send ``names`` of one frame's result, each with the input's header (a rosbags
        ``std_msgs/Header``), as CDR bytes built and published without the interpreter
        lock (:mod:`anomaly_seg_ros.ros.serialized`)."""
        store = typestore()
        for name, raw in result_images(result, names).items():
            publish_cdr(self._outputs[name], image_cdr(store, raw, header))

    def _hint_reliable_camera(self) -> None:
        """Say once per camera when a reliable camera meets the best-effort default: Fast
        DDS then drops fragments of large frames (6 MB rgb8: most frames never arrive)."""
        if self.settings.qos_profile != "sensor_data" or self._subscription is None:
            return
        topic = self._subscription.topic_name
        for info in self.get_publishers_info_by_topic(topic):
            key = (info.node_namespace, info.node_name)
            if info.qos_profile.reliability != ReliabilityPolicy.RELIABLE or key in self._hinted:
                continue
            self._hinted.add(key)
            self.get_logger().info(
                f"{info.node_namespace.rstrip('/')}/{info.node_name} publishes {topic} "
                "reliably; with large raw frames set qos_profile: auto or reliable (best "
                "effort loses fragments of big messages)"
            )

    def _publish_diagnostics(self) -> None:
        if self.description is None or self._diagnostics is None:
            return
        self._hint_reliable_camera()
        snapshot = self.statistics.snapshot()
        status = diagnostic_status(
            self.description,
            snapshot,
            self._previous_report,
            score_type=self.settings.detector.score_type,
        )
        self._previous_report = snapshot
        self._diagnostics.publish(diagnostic_array(status, self.get_clock().now().to_msg()))


def clean_shared_memory(logger: Any) -> None:
    """Remove Fast DDS segments of crashed runs (:mod:`anomaly_seg_ros.ros.shared_memory`)."""
    report = remove_stale_segments()
    if report.removed:
        logger.info(
            f"removed {len(report.removed)} stale Fast DDS shared-memory files of dead "
            f"processes ({report.freed_bytes / 2**20:.0f} MB)"
        )


def spin_until_stopped(
    node: Node, stop: StopSignals, until: Callable[[], bool] | None = None
) -> None:
    """Spin ``node`` until a stop signal, an external shutdown of its context, or ``until()``.

    :param node: the node.
    :param stop: the installed stop signals.
    :param until: an extra end condition (the lifecycle node's shutdown transition); the
        node spins a moment longer after it so that the service reply goes out.
    """
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        # A signal handler only runs between two waits, so wait at most SPIN_PERIOD_SEC.
        while not stop.requested and rclpy.ok(context=node.context):
            executor.spin_once(timeout_sec=SPIN_PERIOD_SEC)
            if until is not None and until():
                for _ in range(3):
                    executor.spin_once(timeout_sec=SPIN_PERIOD_SEC)
                break
    except ExternalShutdownException:
        pass
    finally:
        executor.remove_node(node)
        executor.shutdown()
    if stop.received:
        node.get_logger().info(f"{stop.received[0]} received, shutting down")


def _started_node(autostart: bool) -> DetectorNode:
    """The node, configured and activated when its ``autostart`` parameter says so.

    :raises AnomalySegError: a bad parameter, or the autostart configure failed (why).
    """
    node = DetectorNode(autostart=autostart)
    if node.autostart:
        try:
            node.start()
        except BaseException:
            node.stop()
            node.destroy_node()
            raise
    return node


def main(args: list[str] | None = None, *, autostart: bool = True) -> int:
    """Entry point of both executables: session, stale-segment clean-up, node, spin, stop.

    :param args: command line; None = ``sys.argv``.
    :param autostart: the ``autostart`` parameter's default: True for ``detector_node``,
        False for ``detector_lifecycle_node``.
    :return: the exit code: 0, also after SIGINT/SIGTERM/SIGHUP or the shutdown transition;
        1 when it cannot start (one FATAL line).
    """
    logger = rclpy.logging.get_logger(NODE_NAME)
    # The executables did this before importing anything (entry.py); ``python -m`` gets the
    # thresholds here, and the single arena only for threads not yet given one.
    keep_freed_memory()
    try:
        check_params_files(sys.argv if args is None else args)
        with StopSignals() as stop, ros_session(args, rclpy_signal_handlers=False):
            clean_shared_memory(logger)
            try:
                node = _started_node(autostart)
            except AnomalySegError as error:
                if stop.requested:  # the signal broke the model loading: not a fault
                    logger.info(f"{stop.received[0]} during start-up, exiting")
                    return 0
                logger.fatal(f"cannot start: {error}")
                return 1
            stop.arm()
            try:
                if node.autostart and node.settings.build_only:
                    backend = node.description.backend if node.description else "no model"
                    node.get_logger().info(f"build_only: model ready ({backend}); exiting")
                else:
                    spin_until_stopped(node, stop, until=lambda: node.shut_down)
            finally:
                node.stop()
                node.destroy_node()
            logger.info("stopped cleanly")
    except ConfigError as error:  # the command line itself, before rclpy could start
        logger.fatal(f"cannot start: {error}")
        return 1
    except RCLError as error:  # rcl refused the arguments: its first line says why
        logger.fatal(f"cannot start: {str(error).splitlines()[0]}")
        return 1
    except KeyboardInterrupt:  # a signal during start-up (model loading, engine build)
        logger.info("stop signal during start-up, exiting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
