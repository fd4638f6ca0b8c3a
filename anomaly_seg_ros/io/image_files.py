"""Image files -> arrays, with the size checked on the header before anything is decoded.

The one reader of image files for every command (``detect``, ``check-engine``, the dataset
readers of ``evaluate`` and ``calibrate``, the label folders of ``bag evaluate``): an empty
file, an unreadable one, a header that declares more than the pixel limit (or a tiny file
that declares a huge image, a decompression bomb) and a corrupt JPEG each raise one
:class:`~anomaly_seg_ros.errors.InputError` naming the file, as the node does for
``CompressedImage`` (:mod:`anomaly_seg_ros.io.compressed`, same checks).

Headers read here: PNG, JPEG, BMP, WebP and PNM. Other formats OpenCV reads (TIFF, ...)
are checked after decoding, so only OpenCV's own limit (2^30 pixels) protects against a
bomb in those.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import cv2
import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.io.compressed import (
    JPEG_START,
    PNG_SIGNATURE,
    check_declared_size,
    compressed_size,
    compressed_to_rgb,
)
from anomaly_seg_ros.pipeline.preprocess import MAX_IMAGE_PIXELS, check_size

_PNM_HEADER = re.compile(rb"P[1-6](?:\s+|#[^\n]*\n)+(\d+)(?:\s+|#[^\n]*\n)+(\d+)")


def declared_size(stream: bytes) -> tuple[str, int, int] | None:
    """(format, height, width) from an image file's header, without decoding.

    :param stream: the file's bytes (the first few hundred suffice).
    :return: the size, or None for a format whose header is not read here.
    :raises InputError: a PNG/JPEG whose header is corrupt.
    """
    if stream.startswith((PNG_SIGNATURE, JPEG_START)):
        return compressed_size(stream)
    if stream.startswith(b"BM") and len(stream) >= 26:
        width, height = struct.unpack("<ii", stream[18:26])
        return "bmp", abs(height), width  # a negative height means rows top-down
    if stream.startswith(b"RIFF") and stream[8:12] == b"WEBP" and len(stream) >= 30:
        chunk = stream[12:16]
        if chunk == b"VP8X":
            width = int.from_bytes(stream[24:27], "little") + 1
            height = int.from_bytes(stream[27:30], "little") + 1
            return "webp", height, width
        if chunk == b"VP8L":
            bits = int.from_bytes(stream[21:25], "little")
            return "webp", ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", stream[26:30])
            return "webp", height & 0x3FFF, width & 0x3FFF
    match = _PNM_HEADER.match(stream[:512])
    if match:
        return "pnm", int(match.group(2)), int(match.group(1))
    return None


def read_image_file(
    path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS, unchanged: bool = False
) -> np.ndarray:
    """Read an image file, refusing it by its header before decoding where possible.

    EXIF orientation is ignored, as in the node: a camera frame is used as its pixels are
    stored, not turned like a photo.

    :param path: the file.
    :param max_pixels: largest height * width accepted.
    :param unchanged: False: (H, W, 3) uint8 RGB. True: the samples as stored (labels:
        (H, W) uint8 or uint16, colour images in OpenCV's BGR order), no conversion.
    :return: the image.
    :raises InputError: unreadable or empty file, not an image, too large, a decompression
        bomb, or corrupt; the message starts with the path.
    """
    path = Path(path)
    try:
        stream = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from error
    if not stream:
        raise InputError(f"{path}: empty file (0 bytes), not an image")
    try:
        if not unchanged and stream.startswith((PNG_SIGNATURE, JPEG_START)):
            return compressed_to_rgb(stream, max_pixels)
        size = declared_size(stream)
        if size is not None:
            check_declared_size(*size, len(stream), max_pixels)
        # IMREAD_UNCHANGED (-1) applies no orientation; the flag cannot be combined with it.
        flags = (
            cv2.IMREAD_UNCHANGED if unchanged else cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
        )
        image = cv2.imdecode(np.frombuffer(stream, np.uint8), flags)
        if image is None:
            raise InputError("not a readable image (PNG, JPEG, BMP, WebP, PNM, TIFF)")
        check_size(image.shape[0], image.shape[1], max_pixels)
    except InputError as error:
        raise InputError(f"{path}: {error}") from error
    return image if unchanged else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
