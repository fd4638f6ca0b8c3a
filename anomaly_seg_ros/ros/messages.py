"""Arrays -> rclpy ``sensor_msgs`` messages: thin wrappers over :mod:`anomaly_seg_ros.io`.

Decoding (message -> array) is rclpy-free and lives in :mod:`anomaly_seg_ros.io.messages`.
"""

from __future__ import annotations

import array
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from anomaly_seg_ros.io.compressed import encode_compressed
from anomaly_seg_ros.io.image import RawImage, array_to_raw

#: With field checks on, the generated ``data`` setter keeps an ``array.array('B')`` as it
#: is; with them off (the default since Jazzy) it copies it into a new array. Distros
#: whose messages have no checks switch (Humble) keep the array anyway.
_KEEP_DATA = {"check_fields": True} if "_check_fields" in Image.__slots__ else {}
#: The generated message stores ``data`` in this slot and its C conversion (at publish)
#: reads the field through the buffer protocol, so any contiguous uint8 buffer works.
_DATA_SLOT = "_data"
_CAN_BORROW = _DATA_SLOT in Image.__slots__


def raw_to_message(raw: RawImage, header: Header, borrow: bool = False) -> Image:
    """An Image message with ``raw``'s pixels and the given header.

    :param raw: packed pixels (:func:`~anomaly_seg_ros.io.image.array_to_raw`).
    :param header: the header to carry.
    :param borrow: False: ``data`` is a copy (an ``array.array``, copied once). True:
        ``data`` is a flat uint8 view of ``raw.data`` itself, for a message that is
        published at once (``publish`` copies the pixels into the middleware; a 1024x2048
        frame's five outputs are 25 MB, so the copy saved is not small). The message is
        then only valid while ``raw.data`` is unchanged; where the generated class has
        no ``_data`` slot it falls back to the copy.
    :return: the message.
    """
    message = Image(
        header=header,
        height=raw.height,
        width=raw.width,
        encoding=raw.encoding,
        is_bigendian=bool(raw.is_bigendian),
        step=raw.step,
        **_KEEP_DATA,
    )
    pixels = np.ascontiguousarray(raw.data)
    if borrow and _CAN_BORROW:
        # The setter would copy whatever is not an array.array; the slot takes the view.
        setattr(message, _DATA_SLOT, pixels.reshape(-1).view(np.uint8))
        return message
    data = array.array("B")
    # Assigning an array.array skips rclpy's per-element check of a plain sequence.
    if pixels.size:  # memoryview cannot cast an empty multi-dimensional buffer
        data.frombytes(pixels.data.cast("B"))
    message.data = data  # kept as it is, not copied again (see _KEEP_DATA)
    return message


def ros_header(header: Any) -> Header:
    """An rclpy Header with the stamp and frame of ``header`` (e.g. a ``rosbags`` one)."""
    return Header(
        stamp=Time(sec=int(header.stamp.sec), nanosec=int(header.stamp.nanosec)),
        frame_id=str(header.frame_id),
    )


def array_to_message(pixels: np.ndarray, encoding: str, header: Header) -> Image:
    """An Image message from an array (see :func:`array_to_raw` for what fits)."""
    return raw_to_message(array_to_raw(pixels, encoding), header)


def compressed_message(
    rgb: np.ndarray, header: Header, fmt: str = "jpeg", quality: int = 90
) -> CompressedImage:
    """A CompressedImage message with ``rgb`` encoded as JPEG or PNG."""
    message = CompressedImage(header=header, format=fmt)
    data = array.array("B")
    data.frombytes(encode_compressed(rgb, fmt, quality))
    message.data = data
    return message
