"""sensor_msgs/CompressedImage (JPEG, PNG) -> RGB, with OpenCV and simplejpeg (no cv_bridge).

Like :mod:`anomaly_seg_ros.io.image`, this module imports no ROS package. The
image size is read from the JPEG/PNG header before decoding, so an absurdly large image
(or a small stream that declares a huge one: a decompression bomb) is rejected without
allocating it, and a corrupt or truncated stream raises
:class:`~anomaly_seg_ros.errors.InputError` instead of yielding a half-grey frame.

JPEGs are decoded by libjpeg-turbo through ``simplejpeg`` in strict mode, which turns
libjpeg's recoverable warnings ("Corrupt JPEG data: premature end of data segment", the
warnings OpenCV only prints to stderr while it fills the rest of the frame with grey) into
errors. Without simplejpeg installed the OpenCV decoder is used, with the structural checks
below only. A JPEG has no checksum: a flipped bit that still forms valid Huffman codes
changes a few blocks and cannot be told from a real picture by any decoder.
"""

from __future__ import annotations

import struct
from typing import Any

import cv2
import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.pipeline.preprocess import MAX_IMAGE_PIXELS, check_size

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_START = b"\xff\xd8"
JPEG_END = b"\xff\xd9"
# Start-of-frame markers carry the image size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: Most RGB bytes a compressed stream may declare per byte it holds, for images whose RGB
#: exceeds :data:`RATIO_CHECKED_BYTES`. Deflate cannot pack more than about 1032:1 and a
#: JPEG needs at least one bit per 8x8 block (at most 1536:1), so only a (near) uniform
#: image comes close; camera frames stay below 50:1. A small stream declaring a frame of
#: hundreds of MB is a decompression bomb: refused before it is decoded.
MAX_COMPRESSION_RATIO = 500
#: Decoded RGB size above which :data:`MAX_COMPRESSION_RATIO` is enforced (32 MiB, about
#: 3300x3300): smaller images cost little to decode whatever their ratio.
RATIO_CHECKED_BYTES = 32 * 2**20


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


def check_declared_size(
    kind: str, height: int, width: int, stream_bytes: int, max_pixels: int = MAX_IMAGE_PIXELS
) -> None:
    """Refuse an image by the size its header declares, before anything is decoded.

    :param kind: the format, for the message (``"png"``, ``"jpeg"``, ...).
    :param height: height from the header.
    :param width: width from the header.
    :param stream_bytes: length of the compressed stream.
    :param max_pixels: the pixel limit (:func:`~anomaly_seg_ros.pipeline.preprocess.check_size`).
    :raises InputError: zero size, more than ``max_pixels``, or a large image declared by a
        stream too small to hold it (:data:`MAX_COMPRESSION_RATIO`).
    """
    check_size(height, width, max_pixels)
    decoded_bytes = height * width * 3
    if decoded_bytes > RATIO_CHECKED_BYTES and decoded_bytes > MAX_COMPRESSION_RATIO * max(
        stream_bytes, 1
    ):
        raise InputError(
            f"{kind.upper()} of {stream_bytes} bytes declares {height}x{width} "
            f"({decoded_bytes / 2**20:.0f} MB decoded, {decoded_bytes // max(stream_bytes, 1)}"
            f":1; camera frames stay below 50:1): refused as a decompression bomb"
        )


def decode_jpeg_rgb(stream: bytes) -> np.ndarray | None:
    """Decode a JPEG to RGB with libjpeg's warnings treated as errors.

    :param stream: the JPEG stream (header already checked).
    :return: (H, W, 3) uint8 RGB, or None when simplejpeg is not installed or cannot
        convert the colour space (CMYK): decode with OpenCV then.
    :raises InputError: libjpeg reported corrupt or missing data.
    """
    try:
        import simplejpeg  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return None
    try:
        rgb: np.ndarray = simplejpeg.decode_jpeg(stream, colorspace="RGB", strict=True)
    except ValueError as error:
        if "color conversion" in str(error).lower() or "colorspace" in str(error).lower():
            return None
        raise InputError(f"corrupt JPEG, libjpeg says: {error}") from error
    return rgb


def compressed_to_rgb(data: Any, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode a JPEG or PNG stream to RGB.

    :param data: the ``CompressedImage.data`` buffer (bytes, array.array or uint8 array);
        the ``format`` field is not needed, the stream's own header says what it is.
    :param max_pixels: reject images with more pixels than this (checked on the header).
    :return: (H, W, 3) uint8 RGB (grey and RGBA inputs are converted, 16-bit PNG scaled).
    :raises InputError: empty data, unknown format, too large (also a decompression bomb:
        :func:`check_declared_size`), corrupt or truncated stream.
    """
    stream = data if isinstance(data, bytes) else memoryview(data).tobytes()
    if not stream:
        raise InputError("compressed image has no data (zero size)")
    kind, height, width = compressed_size(stream)
    check_declared_size(kind, height, width, len(stream), max_pixels)
    # Entropy-coded JPEG data never contains an unstuffed FF D9, so its absence means the
    # stream was cut short; OpenCV would otherwise return a partly grey image.
    if kind == "jpeg" and stream.rfind(JPEG_END) < 2:
        raise InputError("truncated JPEG: no end-of-image marker; the stream was cut short")
    if kind == "jpeg":
        check_jpeg_structure(stream)
        rgb = decode_jpeg_rgb(stream)
        if rgb is not None:
            if rgb.shape[:2] != (height, width):
                raise InputError(
                    f"corrupt JPEG: header says {height}x{width}, decoded {rgb.shape[:2]}"
                )
            return rgb
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
