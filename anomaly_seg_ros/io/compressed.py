"""sensor_msgs/CompressedImage (JPEG, PNG) -> RGB, with OpenCV only (no cv_bridge).

Like :mod:`anomaly_seg_ros.io.image`, this module imports no ROS package. The
image size is read from the JPEG/PNG header before decoding, so an absurdly large image is
rejected without allocating it, and a corrupt or truncated stream raises
:class:`~anomaly_seg_ros.errors.InputError` instead of yielding a half-grey frame.
"""

from __future__ import annotations

import struct
from typing import Any

import cv2
import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.preprocess import MAX_IMAGE_PIXELS, check_size

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_START = b"\xff\xd8"
JPEG_END = b"\xff\xd9"
# Start-of-frame markers carry the image size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def compressed_size(data: bytes) -> tuple[str, int, int]:
    """Read format and size from a JPEG or PNG header without decoding.

    :param data: the compressed stream.
    :return: (``"jpeg"`` or ``"png"``, height, width).
    :raises InputError: neither JPEG nor PNG, or the header is cut short or corrupt.
    """
    if data.startswith(PNG_SIGNATURE):
        # The IHDR chunk must come first: length (4), type (4), width (4), height (4).
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise InputError("corrupt PNG: missing IHDR header chunk")
        width, height = struct.unpack(">II", data[16:24])
        return "png", height, width
    if data.startswith(JPEG_START):
        return ("jpeg", *_jpeg_size(data))
    head = bytes(data[:8])
    raise InputError(
        f"compressed image is neither JPEG nor PNG (starts with {head!r}); "
        "only jpeg and png compressed transports are supported"
    )


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """(height, width) from the first start-of-frame segment of a JPEG stream."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise InputError(f"corrupt JPEG: expected a marker at byte {position}")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length field
            position += 2
            continue
        if position + 4 > len(data):
            break
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _JPEG_FRAME_MARKERS:
            if position + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return height, width
        if marker == 0xDA:  # start of scan before any frame header
            break
        position += 2 + length
    raise InputError("corrupt JPEG: no frame header (SOF) with the image size found")


def _next_marker(array: np.ndarray, start: int) -> int:
    """Position of the first marker at or after ``start`` in entropy-coded data (an FF not
    followed by 00 stuffing, an RSTn marker or another FF fill byte), or -1."""
    ffs = np.flatnonzero(array[start:-1] == 0xFF) + start
    followers = array[ffs + 1]
    inside = (
        (followers == 0x00) | (followers == 0xFF) | ((followers >= 0xD0) & (followers <= 0xD7))
    )
    markers = ffs[~inside]
    return int(markers[0]) if markers.size else -1


def check_jpeg_structure(data: bytes) -> None:
    """Walk a JPEG's segments and scans: every marker between the scans must be one a JPEG
    may contain. Garbage written over scan data (a broken link, a half-overwritten buffer)
    puts FF bytes with impossible followers there; OpenCV would decode it without a word
    and fill the rest with grey.

    :raises InputError: a marker that cannot be in a JPEG, or the stream ends in a scan.
    """
    array = np.frombuffer(data, np.uint8)
    position = 2
    while position + 2 <= len(data):
        if data[position] != 0xFF:
            raise InputError(f"corrupt JPEG: expected a marker at byte {position}")
        marker = data[position + 1]
        if marker == 0xD9:
            return
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            position += 2 if marker != 0xFF else 1
            continue
        if not (0xC0 <= marker <= 0xFE) or 0xF0 <= marker <= 0xFD:
            raise InputError(f"corrupt JPEG: invalid marker FF{marker:02X} at byte {position}")
        if position + 4 > len(data):
            break
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        position += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next marker
            position = _next_marker(array, position)
            if position < 0:
                break
    raise InputError("truncated JPEG: the stream ends before its end-of-image marker")


def compressed_to_rgb(data: Any, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode a JPEG or PNG stream to RGB.

    :param data: the ``CompressedImage.data`` buffer (bytes, array.array or uint8 array);
        the ``format`` field is not needed, the stream's own header says what it is.
    :param max_pixels: reject images with more pixels than this (checked on the header).
    :return: (H, W, 3) uint8 RGB (grey and RGBA inputs are converted, 16-bit PNG scaled).
    :raises InputError: empty data, unknown format, too large, corrupt or truncated stream.
    """
    stream = data if isinstance(data, bytes) else memoryview(data).tobytes()
    if not stream:
        raise InputError("compressed image has no data (zero size)")
    kind, height, width = compressed_size(stream)
    check_size(height, width, max_pixels)
    # Entropy-coded JPEG data never contains an unstuffed FF D9, so its absence means the
    # stream was cut short; OpenCV would otherwise return a partly grey image.
    if kind == "jpeg" and stream.rfind(JPEG_END) < 2:
        raise InputError("truncated JPEG: no end-of-image marker; the stream was cut short")
    if kind == "jpeg":
        check_jpeg_structure(stream)
    # Camera frames are used as stored: EXIF orientation is a photo convention (and would
    # turn the frame against its header's size); `anomaly-seg detect` ignores it too.
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    bgr = cv2.imdecode(np.frombuffer(stream, dtype=np.uint8), flags)
    if bgr is None:
        raise InputError(f"corrupt {kind.upper()}: OpenCV could not decode {len(stream)} bytes")
    if bgr.shape[:2] != (height, width):
        raise InputError(
            f"corrupt {kind.upper()}: header says {height}x{width}, decoded {bgr.shape[:2]}"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def encode_compressed(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """Encode an RGB image as JPEG or PNG (for tests, bag tools and benchmarks).

    :param rgb: (H, W, 3) uint8 RGB.
    :param fmt: ``"jpeg"`` or ``"png"``.
    :param quality: JPEG quality 1..100.
    :return: the compressed stream.
    :raises InputError: unknown format or an array OpenCV cannot encode.
    """
    extensions = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png"}
    if fmt not in extensions:
        raise InputError(f"cannot encode format {fmt!r}; use jpeg or png")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if extensions[fmt] == ".jpg" else []
    ok, encoded = cv2.imencode(extensions[fmt], cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise InputError(f"OpenCV failed to encode a {rgb.shape} {rgb.dtype} image as {fmt}")
    return encoded.tobytes()
