"""Image files with properties cameras and tools produce, for the bad-input tests."""

from __future__ import annotations

import struct

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
