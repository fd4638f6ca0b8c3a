"""sensor_msgs/Image fields <-> numpy arrays, with numpy and OpenCV only (no cv_bridge).

This module deliberately imports neither rclpy nor any message package: it works on any
object with the ``sensor_msgs/Image`` field names (``encoding``, ``height``, ``width``,
``step``, ``is_bigendian``, ``data``), which rclpy messages, ``rosbags`` messages and the
:class:`RawImage` tuple all have. The node and the offline bag runner share it.

Decoding starts from a zero-copy numpy view of ``data`` that honours ``step`` (row padding)
and ``is_bigendian``; colour conversion is one OpenCV call (or none for ``rgb8``).
Every malformed image raises :class:`~anomaly_seg_ros.errors.InputError` naming the problem.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple, Protocol

import cv2
import numpy as np

from anomaly_seg_ros.errors import InputError, quoted
from anomaly_seg_ros.pipeline.preprocess import MAX_IMAGE_PIXELS, check_size


class Encoding(NamedTuple):
    """How one ROS encoding is laid out and turned into RGB.

    :param channels: samples per pixel in ``data``.
    :param bits: bits per sample (8 or 16).
    :param to_rgb: OpenCV conversion code to RGB, or None when the samples already are RGB.
    """

    channels: int
    bits: int
    to_rgb: int | None


# ROS names the Bayer pattern by its first two rows; OpenCV names it by the second row's
# second and third pixels, so "rggb" in ROS is "BG" in OpenCV (as cv_bridge maps it).
ENCODINGS: dict[str, Encoding] = {
    "rgb8": Encoding(3, 8, None),
    "bgr8": Encoding(3, 8, cv2.COLOR_BGR2RGB),
    "rgba8": Encoding(4, 8, cv2.COLOR_RGBA2RGB),
    "bgra8": Encoding(4, 8, cv2.COLOR_BGRA2RGB),
    "rgb16": Encoding(3, 16, None),
    "bgr16": Encoding(3, 16, cv2.COLOR_BGR2RGB),
    "rgba16": Encoding(4, 16, cv2.COLOR_RGBA2RGB),
    "bgra16": Encoding(4, 16, cv2.COLOR_BGRA2RGB),
    "mono8": Encoding(1, 8, cv2.COLOR_GRAY2RGB),
    "mono16": Encoding(1, 16, cv2.COLOR_GRAY2RGB),
    "bayer_rggb8": Encoding(1, 8, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr8": Encoding(1, 8, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg8": Encoding(1, 8, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg8": Encoding(1, 8, cv2.COLOR_BayerGB2RGB),
    "bayer_rggb16": Encoding(1, 16, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr16": Encoding(1, 16, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg16": Encoding(1, 16, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg16": Encoding(1, 16, cv2.COLOR_BayerGB2RGB),
    # Packed 4:2:2, two bytes per pixel: "yuv422" is UYVY, "yuv422_yuy2" is YUYV.
    "yuv422": Encoding(2, 8, cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": Encoding(2, 8, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": Encoding(2, 8, cv2.COLOR_YUV2RGB_YUY2),
    "yuyv": Encoding(2, 8, cv2.COLOR_YUV2RGB_YUY2),
}

#: Encodings :func:`array_to_raw` writes, with the array dtype and channel count they take.
OUTPUT_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "mono8": (np.dtype(np.uint8), 1),
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "32FC1": (np.dtype(np.float32), 1),
}


class ImageFields(Protocol):
    """Anything shaped like ``sensor_msgs/Image`` (rclpy message, rosbags message, tuple)."""

    encoding: str
    height: int
    width: int
    step: int
    is_bigendian: Any
    data: Any


class RawImage(NamedTuple):
    """The fields of ``sensor_msgs/Image`` without ROS; ``data`` is any bytes-like buffer."""

    encoding: str
    height: int
    width: int
    step: int
    is_bigendian: bool
    data: Any


def supported_encodings() -> tuple[str, ...]:
    """Names of the encodings :func:`image_to_rgb` accepts."""
    return tuple(ENCODINGS)


def image_view(image: ImageFields, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """A zero-copy numpy view of an image message's pixels.

    :param image: an object with the ``sensor_msgs/Image`` fields.
    :param max_pixels: reject images with more pixels than this.
    :return: (H, W) for one-channel encodings, else (H, W, C); uint8 or uint16 in the
        byte order ``is_bigendian`` says; it shares memory with ``image.data`` (read-only
        when ``data`` is immutable) and skips the padding at the end of each row.
    :raises InputError: unknown encoding, zero or oversized image, ``step`` smaller than
        a row, ``data`` shorter than ``step * height``, odd width for 4:2:2 YUV.
    """
    encoding = ENCODINGS.get(image.encoding)
    if encoding is None:
        raise InputError(
            f"unsupported image encoding {quoted(image.encoding)}; supported: "
            f"{', '.join(ENCODINGS)} (or use image/compressed with jpeg/png)"
        )
    height, width, step = int(image.height), int(image.width), int(image.step)
    check_size(height, width, max_pixels)
    itemsize = encoding.bits // 8
    row_bytes = width * encoding.channels * itemsize
    if step < row_bytes:
        raise InputError(
            f"{image.encoding} image: step {step} is smaller than width {width} x "
            f"{encoding.channels * itemsize} bytes per pixel = {row_bytes}"
        )
    buffer = memoryview(image.data)
    if buffer.nbytes < step * height:
        raise InputError(
            f"{image.encoding} image: data has {buffer.nbytes} bytes, fewer than "
            f"step {step} x height {height} = {step * height}"
        )
    buffer = buffer.cast("B")  # flat bytes whatever the container (array.array, ndarray)
    if encoding.channels == 2 and width % 2:
        raise InputError(f"{image.encoding} image: width {width} must be even for 4:2:2 YUV")
    byte_order = ">" if image.is_bigendian else "<"
    dtype = np.dtype(np.uint8) if itemsize == 1 else np.dtype(f"{byte_order}u{itemsize}")
    shape: tuple[int, ...] = (height, width)
    strides: tuple[int, ...] = (step, encoding.channels * itemsize)
    if encoding.channels > 1:
        shape += (encoding.channels,)
        strides += (itemsize,)
    return np.ndarray(shape=shape, dtype=dtype, buffer=buffer, strides=strides)


def image_to_rgb(image: ImageFields, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode an image message to RGB.

    :param image: an object with the ``sensor_msgs/Image`` fields.
    :param max_pixels: reject images with more pixels than this.
    :return: (H, W, 3) uint8 RGB. For ``rgb8`` this is the zero-copy view of ``data``
        (possibly read-only, rows possibly padded); otherwise a new array. 16-bit samples
        are scaled to 8 bits (value / 257, as cv_bridge does).
    :raises InputError: see :func:`image_view`; also when OpenCV rejects the pixels.
    """
    view = image_view(image, max_pixels)
    encoding = ENCODINGS[image.encoding]
    if encoding.bits == 16:
        view = _to_uint8(view)
    if encoding.to_rgb is None:
        return view
    try:
        # OpenCV handles padded rows but wants each pixel's samples contiguous (they are).
        return cv2.cvtColor(view, encoding.to_rgb)
    except cv2.error as error:
        raise InputError(
            f"cannot convert {image.encoding} image of {image.height}x{image.width}: {error}"
        ) from error


def _to_uint8(samples: np.ndarray) -> np.ndarray:
    """Scale 16-bit samples (any byte order) to 8 bits with rounding."""
    scaled = (samples.astype(np.uint32) * 255 + 32767) // 65535
    return scaled.astype(np.uint8)


def array_to_raw(array: np.ndarray, encoding: str) -> RawImage:
    """Pack an array as the fields of an image message (the reverse of decoding).

    :param array: (H, W) uint8 for ``mono8`` (bool is written as 0/255), (H, W, 3) uint8
        for ``rgb8``/``bgr8`` (given in that channel order), (H, W) float32 for ``32FC1``.
    :param encoding: one of :data:`OUTPUT_ENCODINGS`.
    :return: a :class:`RawImage` with tightly packed rows, native byte order, and
        ``data`` a C-contiguous numpy array (a buffer; copy it into the message).
    :raises InputError: unknown encoding, or the array's shape/dtype does not fit it.
    """
    if encoding not in OUTPUT_ENCODINGS:
        raise InputError(
            f"cannot write encoding {encoding!r}; use one of {list(OUTPUT_ENCODINGS)}"
        )
    dtype, channels = OUTPUT_ENCODINGS[encoding]
    if encoding == "mono8" and array.dtype == np.bool_:
        array = array.view(np.uint8) * np.uint8(255)
    expected_ndim = 2 if channels == 1 else 3
    if array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        raise InputError(
            f"{encoding} needs an array of {'(H, W)' if channels == 1 else '(H, W, 3)'}, "
            f"got shape {array.shape}"
        )
    if array.dtype != dtype:
        raise InputError(f"{encoding} needs dtype {dtype}, got {array.dtype}")
    packed = np.ascontiguousarray(array)
    height, width = packed.shape[:2]
    return RawImage(
        encoding=encoding,
        height=height,
        width=width,
        step=width * channels * dtype.itemsize,
        is_bigendian=sys.byteorder == "big" and dtype.itemsize > 1,
        data=packed,
    )
