"""Replay a bag's camera topic into a running node frame by frame, and record its outputs.

With ``camera_info_topic``, each frame's CameraInfo (same stamp) is published just before
it; ``extra_topics`` (the object outputs) are recorded as they come, not waited for.

The detector node keeps only the newest frame (one-slot mailbox), so a player that runs
ahead of inference loses frames. Here each camera message (the bag's CDR bytes, header
unchanged) is published only after every output of the previous one has arrived: frames in
= frames out whatever the machine's speed, and the time per frame is the node's real
round trip. Every output message and ``/diagnostics`` is written, as received (raw CDR,
``raw=True`` subscriptions), into a new rosbag2 with the arrival wall time as bag time,
like ``ros2 bag record``.
"""

from __future__ import annotations

import importlib
import logging
import struct
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Writer
from sensor_msgs.msg import CameraInfo, Image
from tqdm import tqdm

from anomaly_seg_ros.config import NODE_NAME
from anomaly_seg_ros.errors import BackendError, ConfigError
from anomaly_seg_ros.io.bags import (
    IMAGE_TYPE,
    BagMessage,
    create_bag,
    image_connections,
    open_bag,
    read_messages,
    typestore,
)
from anomaly_seg_ros.ros.diagnostics import status_values
from anomaly_seg_ros.ros.session import input_qos, output_qos, use_large_image_transport

LOGGER = logging.getLogger(__name__)
DIAGNOSTICS_TOPIC = "/diagnostics"
DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"
#: Seconds to wait after discovery so that the node also sees our subscriptions (it
#: computes only the outputs somebody subscribes to).
SETTLE_SECONDS = 0.5


@dataclass(frozen=True)
class LockstepOptions:
    """How to replay and record.

    :param camera_topic: image topic in the input bag, published under the same name.
    :param output_topics: full names of the node's image outputs to wait for and record.
    :param domain_id: ROS domain of the node.
    :param status_prefix: diagnostics statuses whose name starts with this are the node's.
    :param frame_timeout: seconds to wait for all outputs of one frame.
    :param connect_timeout: seconds to wait for the node's topics to appear.
    :param diagnostics_timeout: seconds to wait, after the last frame, for a diagnostics
        message that counts every frame.
    :param storage: ``mcap`` or ``sqlite3`` for the recorded bag.
    :param progress: show a tqdm bar.
    :param camera_info_topic: the bag's ``sensor_msgs/CameraInfo`` topic, published (same
        name) before the frame of the same stamp; None = none.
    :param extra_topics: (topic, message type) pairs recorded as they arrive, not waited
        for (``sensor_msgs/msg/PointCloud2`` ...).
    """

    camera_topic: str
    output_topics: tuple[str, ...]
    domain_id: int
    status_prefix: str = f"/{NODE_NAME}:"
    frame_timeout: float = 30.0
    connect_timeout: float = 60.0
    diagnostics_timeout: float = 5.0
    storage: str = "mcap"
    progress: bool = True
    camera_info_topic: str | None = None
    extra_topics: tuple[tuple[str, str], ...] = ()


@dataclass
class LockstepRecord:
    """What happened, in wall-clock nanoseconds (``time.time_ns``).

    :param sent_ns: header stamp -> when the frame was published.
    :param arrivals: output topic -> header stamp -> when its message arrived.
    :param duplicates: output topic -> messages for a stamp that had already arrived.
    :param unknown: output topic -> messages whose stamp was never sent.
    :param timed_out: stamps whose outputs were not all there within ``frame_timeout``.
    :param diagnostics: the node's diagnostics statuses (key -> value), in arrival order.
    """

    sent_ns: dict[int, int] = field(default_factory=dict)
    arrivals: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(dict))
    duplicates: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unknown: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    timed_out: list[int] = field(default_factory=list)
    diagnostics: list[dict[str, str]] = field(default_factory=list)


def cdr_stamp_ns(data: bytes) -> int:
    """``header.stamp`` in nanoseconds of a CDR message that starts with a std_msgs/Header.

    The 4-byte encapsulation header says the byte order (odd second byte = little endian);
    ``builtin_interfaces/Time`` (int32 sec, uint32 nanosec) follows at offset 4.
    """
    order = "<" if data[1] & 1 else ">"
    seconds, nanoseconds = struct.unpack_from(f"{order}iI", data, 4)
    return int(seconds) * 1_000_000_000 + int(nanoseconds)


class _Recorder:
    """Raw subscriptions that write into the bag and track which outputs have arrived."""

    def __init__(
        self, node: Node, writer: Writer, options: LockstepOptions, record: LockstepRecord
    ) -> None:
        self._writer = writer
        self._record = record
        self._prefix = options.status_prefix
        self._lock = threading.Condition()
        store = typestore()
        self.connections = {
            topic: writer.add_connection(topic, IMAGE_TYPE, typestore=store)
            for topic in options.output_topics
        }
        self.connections[DIAGNOSTICS_TOPIC] = writer.add_connection(
            DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, typestore=store
        )
        self.subscriptions = [
            node.create_subscription(
                Image,
                topic,
                lambda data, topic=topic: self._on_output(topic, data),
                output_qos(depth=10),
                raw=True,
            )
            for topic in options.output_topics
        ]
        self.subscriptions.append(
            node.create_subscription(
                DiagnosticArray, DIAGNOSTICS_TOPIC, self._on_diagnostics, 10, raw=True
            )
        )
        for topic, msgtype in options.extra_topics:
            self.connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            self.subscriptions.append(
                node.create_subscription(
                    message_class(msgtype),
                    topic,
                    lambda data, topic=topic: self._on_extra(topic, data),
                    output_qos(depth=10),
                    raw=True,
                )
            )

    def _on_extra(self, topic: str, data: bytes) -> None:
        with self._lock:
            self._writer.write(self.connections[topic], time.time_ns(), data)

    def _on_output(self, topic: str, data: bytes) -> None:
        arrived = time.time_ns()
        stamp = cdr_stamp_ns(data)
        with self._lock:
            self._writer.write(self.connections[topic], arrived, data)
            if stamp not in self._record.sent_ns:
                self._record.unknown[topic] += 1
            elif stamp in self._record.arrivals[topic]:
                self._record.duplicates[topic] += 1
            else:
                self._record.arrivals[topic][stamp] = arrived
            self._lock.notify_all()

    def _on_diagnostics(self, data: bytes) -> None:
        arrived = time.time_ns()
        array = deserialize_message(data, DiagnosticArray)
        with self._lock:
            self._writer.write(self.connections[DIAGNOSTICS_TOPIC], arrived, data)
            for status in array.status:
                if status.name.startswith(self._prefix):
                    self._record.diagnostics.append(status_values(status))
            self._lock.notify_all()

    def mark_sent(self, stamp: int) -> None:
        """Note that the frame with header stamp ``stamp`` is being published now."""
        with self._lock:
            self._record.sent_ns[stamp] = time.time_ns()

    def wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition()`` (evaluated under the lock) holds; False on timeout."""
        with self._lock:
            return self._lock.wait_for(condition, timeout)


def message_class(msgtype: str) -> type:
    """The rclpy class of ``pkg/msg/Name``."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)  # type: ignore[no-any-return]


def camera_infos(reader: Any, topic: str) -> dict[int, bytes]:
    """Header stamp (ns) -> CDR bytes of every message of ``topic`` in the bag."""
    connections = [c for c in reader.connections if c.topic == topic]
    if not connections:
        raise ConfigError(f"the bag has no {topic} topic")
    return {
        cdr_stamp_ns(message.cdr): message.cdr for message in read_messages(reader, connections)
    }


def _wait_connected(
    publisher: Publisher[Image], recorder: _Recorder, timeout: float, alive: Callable[[], bool]
) -> None:
    deadline = time.monotonic() + timeout
    while not (
        publisher.get_subscription_count() > 0
        and all(s.get_publisher_count() > 0 for s in recorder.subscriptions)
    ):
        if not alive():
            raise BackendError("the detector node exited before connecting; see its log")
        if time.monotonic() > deadline:
            raise ConfigError(
                f"the detector node's topics did not appear within {timeout:.0f} s: check "
                "that it runs in the same ROS_DOMAIN_ID with the same RMW, and its log"
            )
        time.sleep(0.05)
    time.sleep(SETTLE_SECONDS)


def replay_lockstep(
    input_bag: str | Path,
    output_bag: str | Path,
    options: LockstepOptions,
    alive: Callable[[], bool] = lambda: True,
) -> LockstepRecord:
    """Publish every ``camera_topic`` message of ``input_bag``, each after the previous
    one's outputs arrived, and record the outputs and diagnostics into ``output_bag``.

    :param alive: tells whether the node process still runs (checked while waiting).
    :return: send and arrival times, anomalies in the output stream, diagnostics.
    :raises BackendError: the node exited.
    :raises ConfigError: the node's topics never appeared, or no such camera topic.
    :raises InputError: the input bag is unreadable or the output bag exists.
    """
    use_large_image_transport()
    record = LockstepRecord()
    context = Context()
    rclpy.init(context=context, domain_id=options.domain_id)
    node = rclpy.create_node("anomaly_seg_demo_player", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, name="demo-recorder", daemon=True)
    try:
        with open_bag(input_bag) as reader, create_bag(output_bag, options.storage) as writer:
            connections = image_connections(reader, options.camera_topic)
            recorder = _Recorder(node, writer, options, record)
            publisher = node.create_publisher(
                Image, options.camera_topic, input_qos("reliable", depth=10)
            )
            infos: dict[int, bytes] = {}
            info_publisher = None
            if options.camera_info_topic is not None:
                infos = camera_infos(reader, options.camera_info_topic)
                info_publisher = node.create_publisher(
                    CameraInfo, options.camera_info_topic, input_qos("reliable", depth=10)
                )
            try:
                spinner.start()
                _wait_connected(publisher, recorder, options.connect_timeout, alive)
                total = sum(c.msgcount for c in connections)
                with tqdm(total=total, unit="frame", disable=not options.progress) as bar:
                    for message in read_messages(reader, connections):
                        if info_publisher is not None:
                            info = infos.get(cdr_stamp_ns(message.cdr))
                            if info is not None:
                                info_publisher.publish(info)
                        _send_and_wait(message, publisher, recorder, record, options, alive)
                        bar.update()
                _wait_final_diagnostics(recorder, record, options, alive)
            finally:
                executor.shutdown()  # no callback may write once the bag is closed
    finally:
        executor.shutdown()
        if spinner.is_alive():
            spinner.join(timeout=5.0)
        node.destroy_node()
        context.try_shutdown()
    return record


def _send_and_wait(
    message: BagMessage,
    publisher: Publisher[Image],
    recorder: _Recorder,
    record: LockstepRecord,
    options: LockstepOptions,
    alive: Callable[[], bool],
) -> None:
    header = message.message.header
    stamp = int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)

    def complete() -> bool:
        return all(stamp in record.arrivals[topic] for topic in options.output_topics)

    recorder.mark_sent(stamp)
    publisher.publish(message.cdr)
    deadline = time.monotonic() + options.frame_timeout
    while not recorder.wait(complete, 0.25):
        if not alive():
            raise BackendError(
                "the detector node exited during the replay (interrupted, or see its log)"
            )
        if time.monotonic() > deadline:
            record.timed_out.append(stamp)
            LOGGER.warning(
                "frame %d: outputs incomplete after %.0f s", stamp, options.frame_timeout
            )
            return


def _wait_final_diagnostics(
    recorder: _Recorder,
    record: LockstepRecord,
    options: LockstepOptions,
    alive: Callable[[], bool],
) -> None:
    """Wait for a diagnostics status that counts every frame sent (the final figures)."""
    sent = len(record.sent_ns)

    def counted() -> bool:
        return any(int(d.get("frames_processed", -1)) >= sent for d in record.diagnostics)

    deadline = time.monotonic() + options.diagnostics_timeout
    while not recorder.wait(counted, 0.25):
        if not alive() or time.monotonic() > deadline:
            LOGGER.warning("no diagnostics counting all %d frames arrived", sent)
            return
