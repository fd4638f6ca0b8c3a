"""Which images the node (and the offline bag runner) publishes, and how each is packed.

Plain numpy: the rclpy message wrappers and the rosbags writer both start from the
:class:`~anomaly_seg_ros.io.image.RawImage` tuples built here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from anomaly_seg_ros.detector import Result
from anomaly_seg_ros.io.image import RawImage, array_to_raw


@dataclass(frozen=True)
class OutputTopic:
    """One published image.

    :param name: topic name relative to the node (``~/<name>``).
    :param toggle: the boolean parameter that switches it on and off.
    :param encoding: the ``sensor_msgs/Image`` encoding it is written in.
    :param field: the :class:`~anomaly_seg_ros.detector.Result` attribute it comes from.
    """

    name: str
    toggle: str
    encoding: str
    field: str


OUTPUT_TOPICS: tuple[OutputTopic, ...] = (
    OutputTopic("labels", "publish_labels", "mono8", "labels"),
    OutputTopic("labels_color", "publish_labels_color", "rgb8", "labels_color"),
    OutputTopic("anomaly_score", "publish_score", "32FC1", "score"),
    OutputTopic("anomaly_mask", "publish_mask", "mono8", "mask"),
    OutputTopic("overlay", "publish_overlay", "rgb8", "overlay"),
)

#: The output names, in table order (``anomaly-seg bag run --outputs`` choices).
OUTPUT_TOPIC_NAMES: tuple[str, ...] = tuple(topic.name for topic in OUTPUT_TOPICS)

#: Topic name endings of the node's outputs (``/<name>``): never taken for camera input.
OUTPUT_SUFFIXES: tuple[str, ...] = tuple(f"/{name}" for name in OUTPUT_TOPIC_NAMES)

#: Output names whose images the Detector builds only on request (``outputs=``).
ON_REQUEST = ("labels_color", "overlay")


def detector_outputs(names: Iterable[str]) -> tuple[str, ...]:
    """The ``outputs=`` argument of ``Detector.detect`` for the wanted topic names."""
    wanted = set(names)
    return tuple(name for name in ON_REQUEST if name in wanted)


def result_images(result: Result, names: Iterable[str]) -> dict[str, RawImage]:
    """Pack the wanted outputs of one frame.

    :param result: the Detector's result (at camera resolution).
    :param names: output names (see :data:`OUTPUT_TOPICS`); ones the result lacks (an
        on-request image that was not requested) are skipped.
    :return: name -> packed image, in :data:`OUTPUT_TOPICS` order.
    """
    wanted = set(names)
    images: dict[str, RawImage] = {}
    for topic in OUTPUT_TOPICS:
        array = getattr(result, topic.field) if topic.name in wanted else None
        if array is not None:
            images[topic.name] = array_to_raw(array, topic.encoding)
    return images
