"""Whole ``sensor_msgs`` messages -> arrays, for rclpy and ``rosbags`` messages alike.

The functions only read message fields, so the same code decodes a message the node
received over DDS and one deserialised from a bag. Building messages is left to the
writer: :func:`bag_image` for ``rosbags``, :mod:`anomaly_seg_ros.ros.messages` for rclpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anomaly_seg_ros.errors import InputError, quoted
from anomaly_seg_ros.io.compressed import compressed_to_rgb
from anomaly_seg_ros.io.image import RawImage, image_to_rgb, image_view
from anomaly_seg_ros.pipeline.preprocess import MAX_IMAGE_PIXELS


def is_compressed(message: Any) -> bool:
    """Whether ``message`` is a ``CompressedImage`` (it has ``format`` and no ``encoding``)."""
    return hasattr(message, "format") and not hasattr(message, "encoding")


def decode_message(message: Any, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """RGB pixels of an Image or CompressedImage message (rclpy or ``rosbags``).

    :param message: the message.
    :param max_pixels: largest height * width accepted.
    :return: (H, W, 3) uint8 RGB; for ``rgb8`` a zero-copy view of ``message.data``.
    :raises InputError: the message is malformed (the message says how).
    """
    if is_compressed(message):
        return compressed_to_rgb(message.data, max_pixels)
    return image_to_rgb(message, max_pixels)


def stamp_ns(message: Any) -> int:
    """``header.stamp`` of a message in integer nanoseconds."""
    stamp = message.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def float_image(message: Any) -> np.ndarray:
    """(H, W) float32 copy of a ``32FC1`` image, honouring ``step`` and byte order.

    :param message: an Image message.
    :return: the scores.
    :raises InputError: another encoding, or ``data`` too short for ``step * height``.
    """
    if message.encoding != "32FC1":
        raise InputError(f"score image encoding {quoted(message.encoding)}, expected 32FC1")
    height, width, step = int(message.height), int(message.width), int(message.step)
    data = np.frombuffer(memoryview(message.data).cast("B"), dtype=np.uint8)
    if step < 4 * width or data.size < step * height:
        raise InputError(f"32FC1 image {height}x{width}: step {step} / {data.size} bytes short")
    rows = data[: step * height].reshape(height, step)[:, : 4 * width]
    order = ">" if message.is_bigendian else "<"
    return rows.copy().view(f"{order}f4").astype(np.float32).reshape(height, width)


def label_image(message: Any) -> np.ndarray:
    """(H, W) uint8 copy of a ``mono8`` ground-truth image (0/1/255).

    :param message: an Image message.
    :return: the labels.
    :raises InputError: another encoding.
    """
    if message.encoding != "mono8":
        raise InputError(
            f"ground-truth encoding {quoted(message.encoding)}, expected mono8 0/1/255"
        )
    return np.array(image_view(message), dtype=np.uint8)


def bag_image(image_class: type, raw: RawImage, header: Any) -> Any:
    """A ``rosbags`` ``sensor_msgs/msg/Image`` with ``raw``'s pixels and ``header``.

    :param image_class: the typestore's ``sensor_msgs/msg/Image`` class.
    :param raw: packed pixels (:func:`~anomaly_seg_ros.io.image.array_to_raw`).
    :param header: the ``std_msgs/Header`` to carry.
    :return: the message, ready for ``serialize_cdr``.
    """
    return image_class(
        header=header,
        height=raw.height,
        width=raw.width,
        encoding=raw.encoding,
        is_bigendian=int(raw.is_bigendian),
        step=raw.step,
        data=np.ascontiguousarray(raw.data).reshape(-1).view(np.uint8),
    )


def image_cdr(store: Any, raw: RawImage, header: Any) -> np.ndarray:
    """The CDR bytes (little endian) of ``sensor_msgs/msg/Image`` with ``raw``'s pixels.

    The same bytes as ``store.serialize_cdr(bag_image(...), IMAGE_TYPE)``, but the pixels
    are copied once, by numpy, which releases the interpreter lock for the copy: the node
    builds its outputs with this while its inference thread draws the next picture.

    :param store: a ``rosbags`` typestore (:func:`anomaly_seg_ros.io.bags.typestore`).
    :param raw: packed pixels (:func:`~anomaly_seg_ros.io.image.array_to_raw`).
    :param header: the ``std_msgs/Header`` to carry (a ``rosbags`` one).
    :return: (N,) uint8 array, encapsulation header included.
    """
    pixels = np.ascontiguousarray(raw.data).reshape(-1).view(np.uint8)
    image_class = store.types["sensor_msgs/msg/Image"]
    empty = bag_image(image_class, raw._replace(data=pixels[:0]), header)
    # ``data`` is the message's last field and needs no alignment: the serialised message
    # without pixels ends in its uint32 length (0), which the pixels then follow.
    head = np.frombuffer(store.serialize_cdr(empty, "sensor_msgs/msg/Image"), np.uint8)[:-4]
    cdr = np.empty(head.size + 4 + pixels.size, np.uint8)
    cdr[: head.size] = head
    cdr[head.size : head.size + 4] = np.frombuffer(
        np.array(pixels.size, "<u4").tobytes(), np.uint8
    )
    cdr[head.size + 4 :] = pixels
    return cdr
