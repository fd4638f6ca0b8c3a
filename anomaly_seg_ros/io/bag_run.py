"""Offline run: every image of a bag through a Detector, results written to a new bag.

The output bag holds the input image topic copied unchanged and one message per output
(see :data:`~anomaly_seg_ros.io.outputs.OUTPUT_TOPICS`) for every input frame, each with
the input header and the input's bag timestamp, under ``<prefix>/<output>`` (by default
the topics the live node publishes). Pure ``rosbags``: no rclpy needed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from anomaly_seg_ros.config import NODE_NAME
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.errors import ConfigError, InputError
from anomaly_seg_ros.io.bags import (
    IMAGE_TYPE,
    STORAGES,
    BagMessage,
    check_topic_name,
    create_bag,
    image_connections,
    open_bag,
    read_messages,
    typestore,
)
from anomaly_seg_ros.io.messages import bag_image, decode_message
from anomaly_seg_ros.io.outputs import (
    OUTPUT_TOPIC_NAMES,
    OUTPUT_TOPICS,
    detector_outputs,
    result_images,
)
from anomaly_seg_ros.preprocess import MAX_IMAGE_PIXELS

LOGGER = logging.getLogger(__name__)

#: Default namespace of the result topics: the live node's private topics.
DEFAULT_PREFIX = f"/{NODE_NAME}"


@dataclass
class BagRunReport:
    """What a bag run did.

    :param topic: the input image topic.
    :param frames_in: image messages read.
    :param frames_out: frames whose results were written (equal to ``frames_in`` unless
        some were malformed).
    :param malformed: (bag timestamp, reason) of every frame that could not be decoded,
        including messages whose stored bytes do not deserialise (corrupt or cut CDR;
        those are not copied to the output bag either).
    :param output_topics: the result topics written.
    """

    topic: str
    frames_in: int = 0
    frames_out: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)
    output_topics: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.frames_in == self.frames_out


def decode_bag_image(message: BagMessage, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """RGB pixels of an Image or CompressedImage read from a bag.

    :raises InputError: the image is malformed.
    """
    return decode_message(message.message, max_pixels)


def run_bag(
    detector: Detector,
    input_bag: str | Path,
    output_bag: str | Path,
    topic: str | None = None,
    storage: str = "mcap",
    outputs: Sequence[str] = OUTPUT_TOPIC_NAMES,
    prefix: str = DEFAULT_PREFIX,
    progress: bool = True,
) -> BagRunReport:
    """Run every frame of an image topic through ``detector`` and write a result bag.

    :param detector: the Detector (same one the node uses).
    :param input_bag: rosbag2 directory (sqlite3/MCAP) or ROS 1 bag.
    :param output_bag: new rosbag2 directory to create.
    :param topic: image topic; None = the bag's only image topic.
    :param storage: output storage, ``mcap`` or ``sqlite3``.
    :param outputs: which outputs to write (names of :data:`OUTPUT_TOPICS`).
    :param prefix: namespace of the result topics.
    :param progress: show a tqdm progress bar.
    :return: counts; malformed frames are skipped (input still copied) and listed.
    :raises InputError: unreadable input bag, existing output path, or not one frame
        processed (then no output bag is left).
    :raises ConfigError: no such image topic, unknown output name or storage, a prefix
        that is no topic name.
    """
    names = [t.name for t in OUTPUT_TOPICS if t.name in set(outputs)]
    unknown = sorted(set(outputs) - set(names))
    if unknown:
        raise ConfigError(f"unknown outputs {unknown}; valid: {[t.name for t in OUTPUT_TOPICS]}")
    if storage not in STORAGES:
        raise ConfigError(f"unknown bag storage {storage!r}; valid: {', '.join(STORAGES)}")
    check_topic_name(prefix, "prefix")
    if Path(output_bag).exists():
        raise InputError(f"output bag {output_bag} already exists; choose a new path")
    store = typestore()
    image_class = store.types[IMAGE_TYPE]
    with ExitStack() as stack:
        reader = stack.enter_context(open_bag(input_bag))
        connections = image_connections(reader, topic)  # validated before any output exists
        writer = stack.enter_context(create_bag(output_bag, storage))
        source = connections[0]
        report = BagRunReport(topic=source.topic)
        undeserializable: list[tuple[int, str]] = []
        copy = writer.add_connection(source.topic, source.msgtype, typestore=store)
        result_connections = {
            name: writer.add_connection(
                f"{prefix.rstrip('/')}/{name}", IMAGE_TYPE, typestore=store
            )
            for name in names
        }
        report.output_topics = tuple(c.topic for c in result_connections.values())
        total = sum(c.msgcount for c in connections)
        bar = tqdm(total=total, unit="frame", disable=not progress, desc=source.topic)
        for message in read_messages(reader, connections, undeserializable):
            report.frames_in += 1
            writer.write(copy, message.timestamp, message.cdr)
            bar.update()
            try:
                rgb = decode_bag_image(message)
            except InputError as error:
                report.malformed.append((message.timestamp, str(error)))
                LOGGER.warning("frame at %d ns skipped: %s", message.timestamp, error)
                continue
            result = detector.detect(rgb, outputs=detector_outputs(names))
            for name, raw in result_images(result, names).items():
                image = bag_image(image_class, raw, message.message.header)
                data = store.serialize_cdr(image, IMAGE_TYPE)
                writer.write(result_connections[name], message.timestamp, data)
            report.frames_out += 1
        bar.close()
        report.frames_in += len(undeserializable)
        report.malformed = sorted(report.malformed + undeserializable)
        if report.frames_out == 0:  # raised inside create_bag: no bag is kept
            found = (
                f"all {report.frames_in} malformed; first: {report.malformed[0][1]}"
                if report.malformed
                else "it has no messages"
            )
            raise InputError(
                f"no frame of {source.topic} in {input_bag} could be processed ({found}); "
                "no output bag written"
            )
    return report
