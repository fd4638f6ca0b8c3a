"""The detector node's object outputs: CameraInfo in; object list, detections, obstacle
points and RViz markers out (docs/objects_ros.md).

:class:`ObjectOutputs` is the node's one handle on the object layer: the node opens and
closes it with its publishers and subscription and hands it each frame's result; the
messages are built by the plain functions of :mod:`anomaly_seg_ros.ros.object_messages`.

Threads: the CameraInfo callback runs in the executor and only swaps in a new camera
model (one reference assignment); the worker thread reads it at the next frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from anomaly_seg_ros.detector import Result
from anomaly_seg_ros.io.object_messages import OBJECT_TOPICS
from anomaly_seg_ros.node_settings import NodeSettings
from anomaly_seg_ros.objects import (
    CameraInfoError,
    CameraModel,
    ObjectFrame,
    ObjectLayer,
    camera_model_from_message,
)
from anomaly_seg_ros.objects.camera import camera_info_key
from anomaly_seg_ros.ros.object_messages import message_module, object_message
from anomaly_seg_ros.ros.session import output_qos
from anomaly_seg_ros.ros.statistics import ProblemThrottle

#: The CameraInfo topic, relative like ``image`` (remap both: ``camera_info:=...``).
CAMERA_INFO_TOPIC = "camera_info"
#: Object outputs keep a few messages for late readers: a lost marker DELETE would leave a
#: stale object in RViz (the messages are small).
OBJECT_QOS_DEPTH = 10


def subscribed(
    topics: Iterable[Any], publishers: Mapping[str, Any], settings: NodeSettings
) -> list[str]:
    """Names of ``topics`` (rows of the output table) that are switched on in ``settings``,
    have a publisher, and somebody subscribes to: nothing else is computed."""
    return [
        topic.name
        for topic in topics
        if settings.publishes(topic.name)
        and topic.name in publishers
        and publishers[topic.name].get_subscription_count() > 0
    ]


def camera_info_qos() -> QoSProfile:
    """Best effort, depth 1: matches reliable and best-effort camera drivers alike."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT
    )


#: A CameraInfo's camera model (rclpy or rosbags message).
camera_from_info = camera_model_from_message


class ObjectOutputs:
    """The object layer of one node: its publishers, CameraInfo subscription and state.

    :param node: the detector node (plain or lifecycle).
    :param throttle: the node's problem throttle (one warning per kind per period).
    """

    def __init__(self, node: Node, throttle: ProblemThrottle) -> None:
        self._node = node
        self._throttle = throttle
        self._publishers: dict[str, Any] = {}
        self._modules: dict[str, Any] = {}
        self._subscription: Any = None
        self._layer: ObjectLayer | None = None
        self._layer_for: tuple[Any, ...] | None = None
        self._camera: CameraModel | None = None
        self._camera_key: tuple[Any, ...] | None = None
        self._told_unset_mount = False

    # --- publishers and subscription -------------------------------------------------

    def open(self, create_publisher: Callable[..., Any]) -> None:
        """Create the publishers of every object output whose message package loads; say
        once which cannot be published and why."""
        classes: dict[str, Any] = {}
        for topic in OBJECT_TOPICS:
            module, why = message_module(topic.msgtype)
            if module is None:
                self._node.get_logger().info(
                    f"no ~/{topic.name} ({topic.optional or topic.msgtype}): {why}; the "
                    "other object outputs are published"
                )
                continue
            self._modules[topic.name] = module
            classes[topic.name] = getattr(module, topic.msgtype.rsplit("/", 1)[-1])
        qos = output_qos(OBJECT_QOS_DEPTH)
        self._publishers = {
            name: create_publisher(message_class, f"~/{name}", qos)
            for name, message_class in classes.items()
        }

    def close(self, destroy_publisher: Callable[[Any], Any]) -> None:
        for publisher in self._publishers.values():
            destroy_publisher(publisher)
        self._publishers = {}

    def open_input(self) -> None:
        """Subscribe to ``camera_info`` (the camera's calibration, for ground positions)."""
        self._subscription = self._node.create_subscription(
            CameraInfo, CAMERA_INFO_TOPIC, self._on_camera_info, camera_info_qos()
        )

    def close_input(self) -> None:
        if self._subscription is not None:
            self._node.destroy_subscription(self._subscription)
            self._subscription = None
        self._layer = None  # a new activation starts new tracks

    def _on_camera_info(self, info: CameraInfo) -> None:
        key = camera_info_key(info)
        if key == self._camera_key:
            return  # the same calibration again (cameras send it with every frame)
        try:
            camera: CameraModel | None = camera_from_info(info)
        except CameraInfoError as error:
            camera = None
            topic = self._subscription.topic_name if self._subscription else CAMERA_INFO_TOPIC
            problem = f"bad CameraInfo on {topic}: {error}; objects are published without position"
            if self._throttle.allow(problem):
                self._node.get_logger().warning(problem)
        self._camera, self._camera_key = camera, key

    # --- per frame ------------------------------------------------------------------------

    def wanted(self, settings: NodeSettings) -> list[str]:
        """Object outputs switched on that somebody subscribes to."""
        return subscribed(OBJECT_TOPICS, self._publishers, settings)

    def idle(self) -> None:
        """Nobody wants objects this frame: forget the tracks (no stale state later)."""
        self._layer = None

    def _current_layer(self, settings: NodeSettings) -> ObjectLayer:
        """The layer for these settings; a change of object settings or mount starts it
        anew (new tracks), the camera model carries over."""
        mount = settings.camera_mount()
        wanted = (settings.objects, mount)
        if self._layer is None or self._layer_for != wanted:
            if mount is None and not self._told_unset_mount:
                self._told_unset_mount = True
                self._node.get_logger().info(
                    "camera mount not set (camera_x ... camera_yaw all 0): objects are "
                    "published without ground position (docs/objects_ros.md)"
                )
            self._layer = ObjectLayer(settings.objects, mount)
            self._layer_for = wanted
        return self._layer

    def process(
        self,
        result: Result,
        header: Header,
        stamp_ns: int,
        settings: NodeSettings,
        names: list[str],
    ) -> ObjectFrame:
        """Run the object layer on one frame's result and publish ``names``.

        :param result: the Detector's result (mask, score, road region at camera size).
        :param header: the camera image's header.
        :param stamp_ns: its stamp in nanoseconds.
        :param settings: the frame's settings snapshot.
        :param names: the object outputs to publish (from :meth:`wanted`).
        :return: the frame's objects (for the caller's statistics).
        """
        layer = self._current_layer(settings)
        camera = self._camera
        if layer.camera is not camera:
            if camera is not None:
                # A new calibration starts a new layer: the tracks' positions came from the
                # old one, and the layer then reports afresh what is wrong with this one (it
                # reports a kind of problem once per spell, so a size mismatch after "no
                # intrinsics yet" would otherwise go unsaid).
                self._layer = None
                layer = self._current_layer(settings)
            layer.set_camera(camera)
        frame = layer.process(result.mask, result.score, result.road_region, stamp_ns)
        for warning in frame.warnings:
            if self._throttle.allow(warning):
                self._node.get_logger().warning(f"objects: {warning}")
        for name in names:
            message = object_message(
                name,
                frame,
                header,
                settings.vehicle_frame,
                settings.detector.threshold,
                self._modules.get(name),
            )
            self._publishers[name].publish(message)
        return frame
