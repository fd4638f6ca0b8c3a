"""Reading and writing rosbags with the ``rosbags`` library (no rclpy, no rosbag2 install).

Input: rosbag2 directories (sqlite3 or MCAP storage) and ROS 1 ``.bag`` files, through
``rosbags.highlevel.AnyReader``. Output: rosbag2 directories, MCAP or sqlite3.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

from anomaly_seg_ros.errors import ConfigError, InputError

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
#: Storage plugins by the name the command line uses.
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
#: rosbag2 metadata version written (8 = Jazzy; Kilted reads it too).
BAG_VERSION = 8


def typestore() -> Typestore:
    """Message definitions used to write bags (those of the ROS 2 release the wheels are)."""
    return get_typestore(Stores.ROS2_KILTED)


@dataclass(frozen=True)
class BagMessage:
    """One message read from a bag.

    :param connection: the topic connection it came from.
    :param timestamp: bag (receive) time, nanoseconds.
    :param message: the deserialised message (``rosbags`` dataclass).
    :param cdr: the message serialised as CDR (what rosbag2 stores and DDS sends).
    """

    connection: Connection
    timestamp: int
    message: Any
    cdr: bytes


@contextmanager
def open_bag(path: str | Path) -> Iterator[AnyReader]:
    """Open a rosbag2 directory (sqlite3 or MCAP) or a ROS 1 bag for reading.

    :raises InputError: the path is missing or not a readable bag.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"bag {path} does not exist")
    try:
        reader = AnyReader([path], default_typestore=typestore())
        reader.open()
    except AnyReaderError as error:
        raise InputError(f"cannot read bag {path}: {error}") from error
    try:
        yield reader
    finally:
        reader.close()


def image_connections(reader: AnyReader, topic: str | None) -> list[Connection]:
    """The connections of the image topic to process.

    :param topic: the topic; None picks the bag's only image topic.
    :raises ConfigError: the topic is not an image topic of this bag, or ``topic`` is None
        and the bag has none or several (the message lists them).
    """
    images = [c for c in reader.connections if c.msgtype in IMAGE_TYPES]
    topics = sorted({c.topic for c in images})
    if topic is None:
        if len(topics) != 1:
            found = ", ".join(topics) or "none"
            raise ConfigError(f"choose the image topic with --topic; image topics: {found}")
        topic = topics[0]
    chosen = [c for c in images if c.topic == topic]
    if not chosen:
        raise ConfigError(
            f"topic {topic!r} has no Image/CompressedImage messages in this bag; "
            f"image topics: {', '.join(topics) or 'none'}"
        )
    if len({c.msgtype for c in chosen}) > 1:
        raise ConfigError(f"topic {topic!r} mixes Image and CompressedImage connections")
    return chosen


def read_messages(reader: AnyReader, connections: Sequence[Connection]) -> Iterator[BagMessage]:
    """The messages of ``connections`` in bag-time order, with their CDR bytes."""
    store = typestore()
    for connection, timestamp, raw in reader.messages(connections=connections):
        message = reader.deserialize(raw, connection.msgtype)
        if reader.is2:
            cdr = bytes(raw)  # rosbag2 stores CDR already: copy it unchanged
        else:
            cdr = bytes(store.serialize_cdr(message, connection.msgtype))
        yield BagMessage(connection, timestamp, message, cdr)


@contextmanager
def create_bag(path: str | Path, storage: str = "mcap") -> Iterator[Writer]:
    """Create a rosbag2 directory for writing.

    :param storage: ``mcap`` or ``sqlite3``.
    :raises ConfigError: unknown storage.
    :raises InputError: the output path already exists or cannot be written.
    """
    if storage not in STORAGES:
        raise ConfigError(f"unknown bag storage {storage!r}; valid: {', '.join(STORAGES)}")
    path = Path(path)
    if path.exists():
        raise InputError(f"output bag {path} already exists; choose a new path")
    try:
        writer = Writer(path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        writer.open()
    except WriterError as error:
        raise InputError(f"cannot create bag {path}: {error}") from error
    try:
        yield writer
    finally:
        writer.close()
