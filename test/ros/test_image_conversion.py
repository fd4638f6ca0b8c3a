"""Image message fields <-> arrays, without rclpy (the pure numpy/OpenCV half)."""

import array
import struct

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.io.compressed import (
    compressed_size,
    compressed_to_rgb,
    encode_compressed,
)
from anomaly_seg_ros.io.image import (
    RawImage,
    array_to_raw,
    image_to_rgb,
    image_view,
    supported_encodings,
)


def scene(height: int = 6, width: int = 8) -> np.ndarray:
    """A deterministic RGB test picture with distinct values in every channel."""
    rng = np.random.default_rng(height * 1000 + width)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def padded(samples: np.ndarray, encoding: str, pad: int = 5, big: bool = False) -> RawImage:
    """Pack ``samples`` (H, W[, C]) into a message-like tuple with ``pad`` bytes per row."""
    height, width = samples.shape[:2]
    rows = samples.reshape(height, -1).view(np.uint8).reshape(height, -1)
    step = rows.shape[1] + pad
    data = np.full((height, step), 0xEE, dtype=np.uint8)
    data[:, : rows.shape[1]] = rows
    return RawImage(encoding, height, width, step, big, data.tobytes())


@pytest.mark.parametrize(
    ("encoding", "forward"),
    [
        ("rgb8", None),
        ("bgr8", cv2.COLOR_RGB2BGR),
        ("rgba8", cv2.COLOR_RGB2RGBA),
        ("bgra8", cv2.COLOR_RGB2BGRA),
    ],
)
def test_colour_encodings_with_row_padding(encoding: str, forward: int | None) -> None:
    rgb = scene()
    samples = rgb if forward is None else cv2.cvtColor(rgb, forward)
    decoded = image_to_rgb(padded(samples, encoding))
    assert decoded.shape == rgb.shape and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, rgb)


def test_rgb8_view_is_zero_copy() -> None:
    data = bytearray(padded(scene(), "rgb8", pad=3).data)
    message = RawImage("rgb8", 6, 8, 8 * 3 + 3, False, data)
    view = image_to_rgb(message)
    data[0] = 17  # writing the message buffer shows through the view: no copy was made
    assert view[0, 0, 0] == 17
    assert view.strides == (27, 3, 1)


def test_mono8_and_mono16_in_both_byte_orders() -> None:
    grey = scene()[..., 0]
    np.testing.assert_array_equal(image_to_rgb(padded(grey, "mono8")), np.dstack([grey] * 3))
    wide = grey.astype(np.uint16) * 257  # 8-bit value v becomes 16-bit v * 257
    for big in (False, True):
        samples = wide.astype(">u2" if big else "<u2")
        view = image_view(padded(samples, "mono16", pad=4, big=big))
        np.testing.assert_array_equal(view, wide)
        np.testing.assert_array_equal(
            image_to_rgb(padded(samples, "mono16", big=big)), np.dstack([grey] * 3)
        )


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_patterns_demosaic_to_the_right_colour(pattern: str) -> None:
    colour = np.array([200, 90, 30], dtype=np.uint8)  # distinct R, G, B
    channel = {"r": 0, "g": 1, "b": 2}
    mosaic = np.zeros((8, 8), dtype=np.uint8)
    for index, letter in enumerate(pattern):
        mosaic[index // 2 :: 2, index % 2 :: 2] = colour[channel[letter]]
    rgb = image_to_rgb(padded(mosaic, f"bayer_{pattern}8"))
    np.testing.assert_array_equal(rgb[2:-2, 2:-2], np.broadcast_to(colour, (4, 4, 3)))


@pytest.mark.parametrize(
    ("encoding", "forward"),
    [("yuv422", cv2.COLOR_RGB2YUV_UYVY), ("yuv422_yuy2", cv2.COLOR_RGB2YUV_YUY2)],
)
def test_yuv422_layouts(encoding: str, forward: int) -> None:
    # Chroma is shared by pixel pairs, so use a picture whose pairs have equal colours.
    rgb = np.repeat(scene(6, 4), 2, axis=1)
    packed = cv2.cvtColor(rgb, forward)
    decoded = image_to_rgb(padded(packed, encoding, pad=2))
    assert np.abs(decoded.astype(int) - rgb.astype(int)).max() <= 12


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_round_trip(fmt: str) -> None:
    rgb = np.kron(scene(6, 8), np.ones((8, 8, 1), dtype=np.uint8))  # blocky: JPEG-friendly
    stream = encode_compressed(rgb, fmt, quality=100)
    assert compressed_size(stream) == (fmt, 48, 64)
    decoded = compressed_to_rgb(np.frombuffer(stream, dtype=np.uint8))
    error = np.abs(decoded.astype(int) - rgb.astype(int))
    if fmt == "png":
        assert error.max() == 0
    else:  # lossy chroma: small on average; swapped channels would give ~80
        assert error.mean() < 8


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (RawImage("16UC9", 4, 4, 12, False, bytes(48)), "unsupported image encoding"),
        (RawImage("rgb8", 4, 4, 12, False, bytes(47)), "fewer than step"),
        (RawImage("rgb8", 4, 4, 12, False, array.array("B")), "data has 0 bytes"),
        (RawImage("rgb8", 0, 4, 12, False, b""), "zero-size"),
        (RawImage("rgb8", 4, 4, 10, False, bytes(48)), "step 10 is smaller"),
        (RawImage("mono16", 4, 4, 4, False, bytes(16)), "step 4 is smaller"),
        (RawImage("yuv422", 4, 3, 6, False, bytes(24)), "must be even"),
        (RawImage("mono8", 100_000, 100_000, 100_000, False, b""), "exceeds the limit"),
    ],
)
def test_malformed_raw_images_name_the_problem(message: RawImage, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        image_to_rgb(message)


def test_malformed_compressed_images_name_the_problem() -> None:
    jpeg = encode_compressed(np.kron(scene(), np.ones((8, 8, 1), np.uint8)), "jpeg")
    huge_png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I4sII", 13, b"IHDR", 60000, 60000)
    cases = {
        b"": "zero size",
        b"GIF89a....": "neither JPEG nor PNG",
        jpeg[: len(jpeg) // 2]: "truncated JPEG",
        jpeg[:2] + bytes(range(256)) * 4 + b"\xff\xd9": "corrupt JPEG",
        huge_png: "exceeds the limit",
    }
    for data, problem in cases.items():
        with pytest.raises(InputError, match=problem):
            compressed_to_rgb(data, max_pixels=10_000_000)


def test_array_to_raw_packs_outputs() -> None:
    mask = np.zeros((3, 5), dtype=bool)
    mask[1, 2] = True
    raw = array_to_raw(mask, "mono8")
    assert (raw.height, raw.width, raw.step) == (3, 5, 5)
    assert set(np.unique(raw.data)) == {0, 255}
    score = np.linspace(-2, 2, 15, dtype=np.float32).reshape(3, 5)
    raw = array_to_raw(score, "32FC1")
    assert raw.step == 20 and not raw.is_bigendian
    np.testing.assert_array_equal(np.frombuffer(raw.data.tobytes(), "<f4").reshape(3, 5), score)
    rgb = scene()
    np.testing.assert_array_equal(image_to_rgb(array_to_raw(rgb, "rgb8")), rgb)
    with pytest.raises(InputError, match="needs dtype"):
        array_to_raw(score.astype(np.float64), "32FC1")
    with pytest.raises(InputError, match="cannot write"):
        array_to_raw(score, "64FC1")


def test_every_advertised_encoding_decodes() -> None:
    for encoding in supported_encodings():
        message = RawImage(encoding, 4, 4, 4 * 8, False, bytes(4 * 4 * 8))
        assert image_to_rgb(message).shape == (4, 4, 3)
