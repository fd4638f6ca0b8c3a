"""``anomaly-seg bag play``: publish a bag's image topic at the recorded (or scaled) rate.

For feeding a live detector node where ``ros2 bag play`` is not installed. The bag is read
with ``rosbags``; the stored CDR bytes are published as they are (no conversion), with
the recorded headers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rclpy
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.publisher import Publisher
from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection
from sensor_msgs.msg import CompressedImage, Image
from tqdm import tqdm

from anomaly_seg_ros.io.bags import COMPRESSED_TYPE, image_connections, open_bag, read_messages
from anomaly_seg_ros.ros.session import input_qos, ros_session

LOGGER = logging.getLogger(__name__)
#: Seconds to wait, after the last message, for reliable subscribers to acknowledge.
ACK_TIMEOUT_SEC = 10.0


@dataclass(frozen=True)
class PlayOptions:
    """How to play a bag.

    :param topic: image topic in the bag; None = its only image topic.
    :param rate: speed factor (2.0 = twice as fast); 0 = as fast as possible.
    :param publish_topic: publish under this name instead of the recorded one.
    :param loop: start again at the end until interrupted.
    :param wait_for_subscriber: seconds to wait for a subscriber before starting (0 = don't).
    :param qos_profile: ``reliable`` or ``sensor_data``.
    :param progress: show a tqdm progress bar.
    """

    topic: str | None = None
    rate: float = 1.0
    publish_topic: str | None = None
    loop: bool = False
    wait_for_subscriber: float = 0.0
    qos_profile: str = "reliable"
    progress: bool = True


def play_bag(
    path: str | Path,
    options: PlayOptions,
    args: list[str] | None = None,
    undeserializable: list[tuple[int, str]] | None = None,
) -> int:
    """Publish the image messages of ``path``; returns how many were published.

    A message whose stored bytes do not deserialise (corrupt or cut CDR) is skipped with a
    warning, as ``bag run`` does, and playing goes on.

    :param undeserializable: where given, the skipped messages are listed here as (bag
        time, reason).
    :raises InputError: the bag cannot be read.
    :raises ConfigError: no such image topic in the bag.
    """
    published = 0
    skipped = [] if undeserializable is None else undeserializable
    with ros_session(args), open_bag(path) as reader:
        connections = image_connections(reader, options.topic)
        message_type = CompressedImage if connections[0].msgtype == COMPRESSED_TYPE else Image
        node = Node("anomaly_seg_bag_player")
        topic = options.publish_topic or connections[0].topic
        publisher = node.create_publisher(
            message_type, topic, input_qos(options.qos_profile, depth=10)
        )
        deadline = time.monotonic() + options.wait_for_subscriber
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        total = sum(c.msgcount for c in connections)
        try:
            while rclpy.ok():
                with tqdm(total=total, unit="msg", disable=not options.progress) as bar:
                    published += _play_once(
                        reader, connections, publisher, options.rate, bar, skipped
                    )
                if not options.loop:
                    break
            # Reliable samples still in the writer's history die with the node: let the
            # subscribers acknowledge the last ones before leaving.
            if not publisher.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_SEC)):
                LOGGER.warning(
                    "not every subscriber acknowledged the last messages within %.0f s",
                    ACK_TIMEOUT_SEC,
                )
        except KeyboardInterrupt:
            pass
        finally:
            node.destroy_node()
    LOGGER.info("published %d messages on %s", published, topic)
    return published


def _play_once(
    reader: AnyReader,
    connections: list[Connection],
    publisher: Publisher[Any],
    rate: float,
    bar: tqdm,
    skipped: list[tuple[int, str]],
) -> int:
    """One pass over the bag, paced by the bag timestamps divided by ``rate``; messages
    that do not deserialise are appended to ``skipped`` (and logged) instead."""
    count = 0
    first_stamp: int | None = None
    started = time.monotonic()
    for message in read_messages(reader, connections, skipped):
        if not rclpy.ok():  # Ctrl-C shut the context down
            break
        if first_stamp is None:
            first_stamp = message.timestamp
        if rate > 0:
            due = started + (message.timestamp - first_stamp) * 1e-9 / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        publisher.publish(message.cdr)
        count += 1
        bar.update()
    return count
