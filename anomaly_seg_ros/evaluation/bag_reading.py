"""Reading evaluation inputs from rosbag2 files (sqlite3 or MCAP) with ``rosbags``.

Decoding uses the package's rclpy-free image conversion, and ground truth is paired with
frames by ``header.stamp``: :class:`StampMatcher` pairs each frame with the label of the
same stamp (or the nearest within a tolerance), keeping at most ``max_pending`` unmatched
items of each kind so that memory stays bounded on long bags. Unpaired frames and labels
are reported, never silently dropped.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.ros.compressed_image import compressed_to_rgb
from anomaly_seg_ros.ros.image_conversion import image_to_rgb, image_view

LOGGER = logging.getLogger(__name__)

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"


def stamp_ns(message: Any) -> int:
    """``header.stamp`` of a message in integer nanoseconds."""
    stamp = message.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def float_image(message: Any) -> np.ndarray:
    """(H, W) float32 copy of a ``32FC1`` image, honouring ``step`` and byte order.

    :raises InputError: another encoding, or ``data`` too short for ``step * height``.
    """
    if message.encoding != "32FC1":
        raise InputError(f"score image encoding {message.encoding!r}, expected 32FC1")
    height, width, step = int(message.height), int(message.width), int(message.step)
    data = np.frombuffer(memoryview(message.data).cast("B"), dtype=np.uint8)
    if step < 4 * width or data.size < step * height:
        raise InputError(f"32FC1 image {height}x{width}: step {step} / {data.size} bytes short")
    rows = data[: step * height].reshape(height, step)[:, : 4 * width]
    order = ">" if message.is_bigendian else "<"
    return rows.copy().view(f"{order}f4").astype(np.float32).reshape(height, width)


def label_image(message: Any) -> np.ndarray:
    """(H, W) uint8 copy of a ``mono8`` ground-truth image (0/1/255).

    :raises InputError: another encoding.
    """
    if message.encoding != "mono8":
        raise InputError(f"ground-truth encoding {message.encoding!r}, expected mono8 0/1/255")
    return np.array(image_view(message), dtype=np.uint8)


def rgb_image(message: Any, msgtype: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an ``Image`` or ``CompressedImage`` message."""
    if msgtype == COMPRESSED_TYPE:
        return compressed_to_rgb(message.data)
    return np.ascontiguousarray(image_to_rgb(message))


def topics_of(reader: Any) -> dict[str, str]:
    """Topic → message type of every connection in an open ``AnyReader``."""
    return {connection.topic: connection.msgtype for connection in reader.connections}


#: Topic name endings of the node's own outputs, never taken for camera input.
NODE_OUTPUTS = ("/labels", "/labels_color", "/anomaly_score", "/anomaly_mask", "/overlay")


def pick_topic(
    topics: dict[str, str],
    wanted: str | None,
    types: Sequence[str],
    suffix: str = "",
    exclude: Sequence[str] = (),
) -> str:
    """``wanted`` if given (checked), else the only topic of ``types`` ending in ``suffix``.

    :param exclude: topics not to choose automatically (ground truth, node outputs).
    :raises InputError: the topic is missing, has another type, or the choice is ambiguous.
    """
    listing = ", ".join(f"{name} [{kind}]" for name, kind in sorted(topics.items()))
    if wanted is not None:
        if topics.get(wanted) not in types:
            raise InputError(f"topic {wanted} of type {'/'.join(types)} not in bag: {listing}")
        return wanted
    candidates = sorted(
        name for name, kind in topics.items() if kind in types and name not in exclude
    )
    candidates = [name for name in candidates if name.endswith(suffix)] if suffix else candidates
    if len(candidates) != 1:
        raise InputError(
            f"cannot choose a {suffix or '/'.join(types)} topic among {candidates or 'none'}; "
            f"name it explicitly (bag topics: {listing})"
        )
    return candidates[0]


def read_messages(reader: Any, topics: Sequence[str]) -> Iterator[tuple[str, str, Any]]:
    """(topic, message type, message) of ``topics`` in bag order."""
    connections = [c for c in reader.connections if c.topic in set(topics)]
    for connection, _, raw in reader.messages(connections=connections):
        yield connection.topic, connection.msgtype, reader.deserialize(raw, connection.msgtype)


@dataclass
class StampMatcher:
    """Pairs frames and labels by stamp; unpaired ones are counted and their stamps kept.

    :param tolerance_ns: largest |Δstamp| that still pairs (0 = identical stamps); pairing
        is greedy: an arriving item takes the nearest pending item of the other kind.
    :param max_pending: unpaired items kept per kind before the oldest is given up.
    """

    tolerance_ns: int = 0
    max_pending: int = 64
    frames: OrderedDict[int, Any] = field(default_factory=OrderedDict)
    labels: OrderedDict[int, np.ndarray] = field(default_factory=OrderedDict)
    frames_without_label: list[int] = field(default_factory=list)
    labels_without_frame: list[int] = field(default_factory=list)

    def add_frame(self, stamp: int, frame: Any) -> tuple[int, Any, np.ndarray] | None:
        """Offer a frame; returns (stamp, frame, label) when a label pairs with it."""
        label_stamp = self._nearest(self.labels, stamp)
        if label_stamp is None:
            self._park(self.frames, stamp, frame, self.frames_without_label)
            return None
        return stamp, frame, self.labels.pop(label_stamp)

    def add_label(self, stamp: int, label: np.ndarray) -> tuple[int, Any, np.ndarray] | None:
        """Offer a label; returns (frame stamp, frame, label) when a frame pairs with it."""
        frame_stamp = self._nearest(self.frames, stamp)
        if frame_stamp is None:
            self._park(self.labels, stamp, label, self.labels_without_frame)
            return None
        return frame_stamp, self.frames.pop(frame_stamp), label

    def finish(self) -> None:
        """Give up every pending item (end of bag)."""
        self.frames_without_label.extend(self.frames)
        self.labels_without_frame.extend(self.labels)
        self.frames.clear()
        self.labels.clear()

    def _nearest(self, pending: OrderedDict[int, Any], stamp: int) -> int | None:
        if stamp in pending:
            return stamp
        if self.tolerance_ns <= 0 or not pending:
            return None
        best = min(pending, key=lambda other: abs(other - stamp))
        return best if abs(best - stamp) <= self.tolerance_ns else None

    def _park(
        self, pending: OrderedDict[int, Any], stamp: int, item: Any, given_up: list[int]
    ) -> None:
        if stamp in pending:
            LOGGER.warning("two messages with stamp %d on one topic; keeping the later", stamp)
            given_up.append(stamp)
        pending[stamp] = item
        while len(pending) > self.max_pending:
            given_up.append(pending.popitem(last=False)[0])


@contextmanager
def open_reader(paths: Sequence[str | Path]) -> Iterator[Any]:
    """An open ``AnyReader`` over one or more bags (messages merged in time order).

    :param paths: rosbag2 folders or files (sqlite3, MCAP) or ROS 1 bags.
    :raises InputError: a path does not exist or is not a readable bag.
    """
    from rosbags.highlevel import AnyReader, AnyReaderError
    from rosbags.typesys import Stores, get_typestore

    bags = [Path(path) for path in paths]
    for bag in bags:
        if not bag.exists():
            raise InputError(f"bag {bag} does not exist")
    try:
        # The ROS 2 store decodes ROS 1 bags' sensor_msgs too (same field names).
        reader = AnyReader(bags, default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        reader.open()
    except AnyReaderError as error:
        raise InputError(f"cannot read bag(s) {[str(b) for b in bags]}: {error}") from error
    try:
        yield reader
    finally:
        reader.close()
