"""How the node's (and the offline bag runner's) images are packed; which there are is
:mod:`anomaly_seg_ros.output_table`'s.

Plain numpy: the rclpy message wrappers and the rosbags writer both start from the
:class:`~anomaly_seg_ros.io.image.RawImage` tuples built here.
"""

from __future__ import annotations

from collections.abc import Iterable

from anomaly_seg_ros.detector import Result
from anomaly_seg_ros.io.image import RawImage, array_to_raw
from anomaly_seg_ros.output_table import IMAGE_OUTPUTS, ON_REQUEST

#: The images (rows of :data:`~anomaly_seg_ros.output_table.OUTPUTS`: name, toggle,
#: encoding, the Result field they come from), in table order.
OUTPUT_TOPICS = IMAGE_OUTPUTS

#: The image output names, in table order.
OUTPUT_TOPIC_NAMES: tuple[str, ...] = tuple(topic.name for topic in OUTPUT_TOPICS)

#: Topic name endings of the node's images (``/<name>``): never taken for camera input.
OUTPUT_SUFFIXES: tuple[str, ...] = tuple(f"/{name}" for name in OUTPUT_TOPIC_NAMES)

__all__ = [
    "ON_REQUEST",
    "OUTPUT_SUFFIXES",
    "OUTPUT_TOPICS",
    "OUTPUT_TOPIC_NAMES",
    "detector_outputs",
    "result_images",
]


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
