"""Reading and writing rosbags with the ``rosbags`` library (no rclpy, no rosbag2 install).

Input: rosbag2 directories (sqlite3 or MCAP storage) and ROS 1 ``.bag`` files, through
``rosbags.highlevel.AnyReader``. Output: rosbag2 directories, MCAP or sqlite3.

Typestore policy (one for the whole package): a bag is read through the message
definitions it stores (MCAP schemas, rosbag2 metadata, ROS 1 connection headers), so a
bag of any distro decodes; :func:`typestore` (ROS 2 Kilted, the release the wheels are)
only fills in definitions a bag lacks, and is the stated distro every bag is written in.
"""

from __future__ import annotations

import errno
import functools
import logging
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

from anomaly_seg_ros.atomic import atomic_folder
from anomaly_seg_ros.errors import ConfigError, InputError, OutputError, quoted

LOGGER = logging.getLogger(__name__)

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
#: Storage plugins by the name the command line uses.
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
#: rosbag2 metadata version written (8 = Jazzy; Kilted reads it too).
BAG_VERSION: Literal[8] = 8


#: The ROS 2 release whose message definitions bags are written in.
WRITE_DISTRO = Stores.ROS2_KILTED


@functools.lru_cache(maxsize=1)
def typestore() -> Typestore:
    """Message definitions bags are written in, and read with where a bag stores none.

    One shared instance (do not register types into it): a typestore compiles each
    message type's (de)serialiser on first use, 5-9 ms for ``sensor_msgs/Image``, which a
    fresh store per message paid on every frame the node took.

    :return: the :data:`WRITE_DISTRO` typestore.
    """
    return get_typestore(WRITE_DISTRO)


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

    :param path: the bag.
    :return: (context manager) the open reader.
    :raises InputError: the path is missing or not a readable bag.
    """
    with open_bags([path]) as reader:
        yield reader


@contextmanager
def open_bags(paths: Sequence[str | Path]) -> Iterator[AnyReader]:
    """One open reader over one or more bags (messages merged in bag-time order).

    :param paths: rosbag2 folders or files (sqlite3, MCAP) or ROS 1 bags.
    :return: (context manager) the open reader.
    :raises InputError: a path does not exist or is not a readable bag.
    """
    bags = [Path(path) for path in paths]
    for bag in bags:
        if not bag.exists():
            raise InputError(f"bag {bag} does not exist")
        if bag.is_dir() and not (bag / "metadata.yaml").is_file():
            raise InputError(
                f"bag folder {bag} has no metadata.yaml (an unfinished recording?); "
                "`ros2 bag reindex` can rebuild it"
            )
    names = ", ".join(str(bag) for bag in bags)
    try:
        reader = AnyReader(bags, default_typestore=typestore())
        reader.open()
    except (AnyReaderError, OSError) as error:
        raise InputError(f"cannot read bag {names}: {error}") from error
    try:
        yield reader
    finally:
        reader.close()


#: A ROS 2 topic name or namespace: ``/``-separated tokens of letters, digits and ``_``,
#: none starting with a digit, no ``__`` and no trailing ``/`` (rcl's rules, without
#: substitutions).
_TOPIC_NAME = re.compile(r"^/?(?!.*__)[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*$")


def check_topic_name(name: str, option: str) -> str:
    """``name`` if it is a valid ROS 2 topic name (or namespace), else one clear error.

    :raises ConfigError: naming the option and the value.
    """
    if name != "/" and not _TOPIC_NAME.match(name):
        raise ConfigError(
            f"{option} {quoted(name)} is not a valid ROS topic name: use /-separated words "
            "of letters, digits and _ (not starting with a digit), e.g. /front/anomaly_seg"
        )
    return name


def topics_of(reader: AnyReader) -> dict[str, str]:
    """Topic -> message type of every connection in an open reader."""
    return {connection.topic: connection.msgtype for connection in reader.connections}


def pick_topic(
    topics: dict[str, str],
    wanted: str | None,
    types: Sequence[str],
    suffix: str = "",
    exclude: Sequence[str] = (),
) -> str:
    """``wanted`` if given (checked), else the only topic of ``types`` ending in ``suffix``.

    :param topics: topic -> message type (:func:`topics_of`).
    :param wanted: the topic the user named, or None to choose.
    :param types: acceptable message types.
    :param suffix: name ending a chosen topic must have.
    :param exclude: topics not to choose automatically (ground truth, node outputs).
    :return: the topic.
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


def read_topics(reader: AnyReader, topics: Sequence[str]) -> Iterator[tuple[str, str, Any]]:
    """(topic, message type, message) of ``topics`` in bag-time order."""
    connections = [c for c in reader.connections if c.topic in set(topics)]
    for connection, timestamp, raw in reader.messages(connections=connections):
        yield connection.topic, connection.msgtype, deserialize(reader, raw, connection, timestamp)


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


#: What ``rosbags`` raises for bytes that are not a valid message of the type.
_CDR_ERRORS = (AnyReaderError, SerdeError, ValueError, IndexError)


def deserialize(reader: AnyReader, raw: bytes, connection: Connection, timestamp: int) -> Any:
    """One message of an open bag, deserialised.

    :raises InputError: the stored bytes are not a valid message (corrupt or cut CDR);
        the message names the topic and bag time.
    """
    try:
        return reader.deserialize(raw, connection.msgtype)
    except _CDR_ERRORS as error:
        raise InputError(
            f"undeserializable {connection.msgtype} on {connection.topic} at bag time "
            f"{timestamp} ns: {error}"
        ) from error


def cdr_message(raw: bytes, msgtype: str, where: str) -> Any:
    """A message from its CDR bytes (a raw DDS subscription's), with :func:`typestore`.

    Arrays come out as views of ``raw`` (no copy of the pixels): the bytes go in as a
    memoryview, since the deserialiser slices off the encapsulation header first, and a
    slice of ``bytes`` is a copy (6 ms for a 6 MB frame, holding the interpreter lock).

    :param where: what the error names (e.g. ``on /camera/image_raw``).
    :raises InputError: the bytes are not a valid ``msgtype`` message.
    """
    try:
        return typestore().deserialize_cdr(memoryview(raw), msgtype)
    except _CDR_ERRORS as error:
        raise InputError(f"undeserializable {msgtype} {where}: {error}") from error


def read_messages(
    reader: AnyReader,
    connections: Sequence[Connection],
    undeserializable: list[tuple[int, str]] | None = None,
) -> Iterator[BagMessage]:
    """The messages of ``connections`` in bag-time order, with their CDR bytes.

    :param undeserializable: where given, messages whose bytes do not deserialise are
        skipped and listed here as (bag time, reason); else they raise.
    :raises InputError: an undeserializable message and no ``undeserializable`` list.
    """
    store = typestore()
    for connection, timestamp, raw in reader.messages(connections=connections):
        try:
            message = deserialize(reader, raw, connection, timestamp)
        except InputError as error:
            if undeserializable is None:
                raise
            undeserializable.append((timestamp, str(error)))
            LOGGER.warning("%s", error)
            continue
        if reader.is2:
            cdr = bytes(raw)  # rosbag2 stores CDR already: copy it unchanged
        else:
            cdr = bytes(store.serialize_cdr(message, connection.msgtype))
        yield BagMessage(connection, timestamp, message, cdr)


@contextmanager
def create_bag(path: str | Path, storage: str = "mcap") -> Iterator[Writer]:
    """Create a rosbag2 directory for writing, atomically.

    The bag is written under a temporary name beside ``path`` and renamed to ``path``
    only when the block ends without an error, so a failed or interrupted run never
    leaves a bag that looks complete (nor one that makes the rerun say "exists").

    :param path: the bag folder to create.
    :param storage: ``mcap`` or ``sqlite3``.
    :return: (context manager) the open writer.
    :raises ConfigError: unknown storage.
    :raises InputError: the output path already exists.
    :raises OutputError: the bag cannot be written (full disk, no permission).
    """
    if storage not in STORAGES:
        raise ConfigError(f"unknown bag storage {storage!r}; valid: {', '.join(STORAGES)}")
    path = Path(path)
    if path.exists():
        raise InputError(f"output bag {path} already exists; choose a new path")
    try:
        # keep_name: the writer names its storage file after its folder (<bag>.mcap).
        with atomic_folder(path, keep_name=True) as partial:
            writer = Writer(partial, version=BAG_VERSION, storage_plugin=STORAGES[storage])
            writer.open()
            try:
                yield writer
            finally:
                writer.close()  # writes metadata.yaml
    except BaseException as error:
        converted = output_error(error, f"bag {path}")
        if converted is error:
            raise
        raise converted from error


def output_error(error: BaseException, what: str) -> BaseException:
    """The error to raise for a failed write of ``what`` (its partial output removed).

    :param error: what the write raised.
    :param what: the output, as the message names it (e.g. ``bag out/`` or ``report r/``).
    :return: an :class:`OutputError` for a full disk or another OS / writer error, else
        ``error`` itself (a bad input, an interrupt).
    """
    if _disk_full(error):
        return OutputError(
            f"no space left on the device writing {what}; nothing was kept. "
            "Free space or write elsewhere"
        )
    if isinstance(error, (OSError, WriterError)):
        return OutputError(f"cannot write {what}: {error}")
    return error


def _disk_full(error: BaseException | None) -> bool:
    """Whether ``error`` (or what caused it) is a full disk, as OSError or from sqlite3."""
    while error is not None:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        if isinstance(error, sqlite3.Error) and "full" in str(error).lower():
            return True
        error = error.__cause__ or error.__context__
    return False
