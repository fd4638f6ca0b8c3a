"""Image files with properties cameras and tools produce, for the bad-input tests."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np


def exif_oriented_jpeg(rgb: np.ndarray, orientation: int) -> bytes:
    """A JPEG with an EXIF APP1 segment carrying ``orientation`` (6 = turn 90° clockwise)."""
    ok, encoded = cv2.imencode(".jpg", rgb[..., ::-1])
    assert ok
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHII", 0x0112, 3, 1, orientation) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    data = encoded.tobytes()
    return data[:2] + app1 + data[2:]


def overwritten_jpeg(data: bytes, seed: int, count: int = 2000) -> bytes:
    """``data`` with ``count`` random bytes written over its scan data (a broken buffer)."""
    rng = np.random.default_rng(seed)
    damaged = bytearray(data)
    scan = data.find(b"\xff\xda")
    start = scan + int((len(data) - scan - count) * rng.uniform(0.1, 0.9))
    damaged[start : start + count] = rng.integers(0, 256, count, dtype=np.uint8).tobytes()
    return bytes(damaged)


def textured_jpeg(height: int = 240, width: int = 320, seed: int = 0) -> bytes:
    """A JPEG of a smooth random picture (enough scan data to damage realistically)."""
    rng = np.random.default_rng(seed)
    bgr = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (9, 9), 3)
    ok, encoded = cv2.imencode(".jpg", bgr)
    assert ok
    return encoded.tobytes()


def zeroed_jpeg(data: bytes, count: int = 2000) -> bytes:
    """``data`` with ``count`` bytes of its scan data zeroed from a third of the way in
    (OpenCV decodes it without an error and fills the rest grey)."""
    scan = data.find(b"\xff\xda")
    start = scan + (len(data) - scan) // 3
    return data[:start] + bytes(count) + data[start + count :]


def jpeg_claiming(data: bytes, height: int, width: int) -> bytes:
    """``data`` with its frame header (SOF0) edited to claim ``height`` x ``width``."""
    sof = data.find(b"\xff\xc0")
    assert sof > 0
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


def png_claiming(height: int, width: int) -> bytes:
    """A small PNG (valid CRC) whose header claims ``height`` x ``width``."""
    _, encoded = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(encoded.tobytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)
