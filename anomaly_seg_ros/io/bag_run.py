"""Offline run: every image of a bag through a Detector, results written to a new bag.

The output bag holds the input image topic copied unchanged and one message per output
(see :data:`~anomaly_seg_ros.output_table.OUTPUTS`) for every input frame, each with
the input header and the input's bag timestamp, under ``<prefix>/<output>`` (by default
the topics the live node publishes). With the object outputs chosen (the default), the
object layer runs as in the node and writes ``obstacle_points`` (PointCloud2),
``object_markers`` (MarkerArray) and, where ``anomaly_seg_msgs`` can be read,
``objects`` (:mod:`~anomaly_seg_ros.io.object_bag`). Pure ``rosbags``: no rclpy needed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from anomaly_seg_ros.io.object_bag import BagObjectOutputs, object_typestore
from anomaly_seg_ros.io.object_messages import BAG_OBJECT_NAMES
from anomaly_seg_ros.io.outputs import OUTPUT_TOPICS, detector_outputs, result_images
from anomaly_seg_ros.objects import CameraMount, ObjectSettings
from anomaly_seg_ros.output_table import BAG_OUTPUT_NAMES
from anomaly_seg_ros.pipeline.preprocess import MAX_IMAGE_PIXELS

LOGGER = logging.getLogger(__name__)

#: Default namespace of the result topics: the live node's private topics.
DEFAULT_PREFIX = f"/{NODE_NAME}"
#: Every output ``bag run`` can write: the images, then the objects.
RUN_OUTPUT_NAMES = BAG_OUTPUT_NAMES


def default_outputs() -> tuple[str, ...]:
    """All outputs, ``objects`` only where its message type can be built (else said)."""
    store, why = object_typestore()
    if store is None:
        LOGGER.info("no ~/objects in the output bag: %s", why)
    return tuple(name for name in RUN_OUTPUT_NAMES if name != "objects" or store is not None)


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
    outputs: Sequence[str] | None = None,
    prefix: str = DEFAULT_PREFIX,
    progress: bool = True,
    mount: CameraMount | None = None,
    object_settings: ObjectSettings | None = None,
    camera_info_topic: str | None = None,
) -> BagRunReport:
    """Run every frame of an image topic through ``detector`` and write a result bag.

    :param detector: the Detector (same one the node uses).
    :param input_bag: rosbag2 directory (sqlite3/MCAP) or ROS 1 bag.
    :param output_bag: new rosbag2 directory to create.
    :param topic: image topic; None = the bag's only image topic.
    :param storage: output storage, ``mcap`` or ``sqlite3``.
    :param outputs: which outputs to write (of :data:`RUN_OUTPUT_NAMES`); None = all
        (:func:`default_outputs`).
    :param prefix: namespace of the result topics.
    :param progress: show a tqdm progress bar.
    :param mount: the camera mount for ground positions; None = the input bag folder's
        ``description.json`` (a synthetic drive's), else objects get no position.
    :param object_settings: the object layer's settings (default ``ObjectSettings()``).
    :param camera_info_topic: the CameraInfo topic; None = the one beside the image topic
        (``/cam/image_raw`` -> ``/cam/camera_info``).
    :return: counts; malformed frames are skipped (input still copied) and listed.
    :raises InputError: unreadable input bag, existing output path, or not one frame
        processed (then no output bag is left).
    :raises ConfigError: no such image topic, unknown output name or storage, a prefix
        that is no topic name.
    """
    outputs = default_outputs() if outputs is None else outputs
    unknown = sorted(set(outputs) - set(RUN_OUTPUT_NAMES))
    if unknown:
        raise ConfigError(f"unknown outputs {unknown}; valid: {list(RUN_OUTPUT_NAMES)}")
    names = [t.name for t in OUTPUT_TOPICS if t.name in set(outputs)]
    object_names = [name for name in BAG_OBJECT_NAMES if name in set(outputs)]
    if "objects" in object_names and object_typestore()[0] is None:
        raise ConfigError(f"cannot write objects: {object_typestore()[1]}")
    if camera_info_topic is not None:
        check_topic_name(camera_info_topic, "camera_info_topic")
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
        objects = None
        object_connections: dict[str, Any] = {}
        if object_names:
            objects = BagObjectOutputs(
                reader,
                input_bag,
                source.topic,
                object_names,
                mount,
                object_settings or ObjectSettings(),
                camera_info_topic,
                detector.config.threshold,
            )
            object_connections = objects.connections(writer, prefix)
        report.output_topics = tuple(
            c.topic for c in [*result_connections.values(), *object_connections.values()]
        )
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
            road = objects is not None and objects.layer.settings.on_road_only
            result = detector.detect(rgb, outputs=detector_outputs(names), road_region=road)
            header = message.message.header
            for name, raw in result_images(result, names).items():
                image = bag_image(image_class, raw, header)
                data = store.serialize_cdr(image, IMAGE_TYPE)
                writer.write(result_connections[name], message.timestamp, data)
            if objects is not None:
                road_region = result.road_region
                written = objects.frame(
                    result.mask, result.score, road_region, header, message.timestamp
                )
                for name, cdr in written.items():
                    writer.write(object_connections[name], message.timestamp, cdr)
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
