"""Image files and compressed frames: the size is refused on the header, corrupt JPEGs are
errors (not grey frames), and every file reader shares one function."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from image_fixtures import jpeg_claiming, png_claiming, textured_jpeg, zeroed_jpeg

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.io.compressed import (
    MAX_COMPRESSION_RATIO,
    compressed_to_rgb,
    decode_jpeg_rgb,
)
from anomaly_seg_ros.io.image_files import declared_size, read_image_file


def test_zeroed_scan_data_is_corrupt_not_a_grey_frame() -> None:
    damaged = zeroed_jpeg(textured_jpeg())
    # OpenCV decodes it without an error: what the node used to publish
    assert cv2.imdecode(np.frombuffer(damaged, np.uint8), cv2.IMREAD_COLOR) is not None
    with pytest.raises(InputError, match=r"corrupt JPEG.*premature end"):
        compressed_to_rgb(damaged)


def test_a_header_claiming_a_larger_frame_is_corrupt() -> None:
    # 1200x1600 = 5.8 MB decoded: under the bomb check, so libjpeg finds the data missing
    with pytest.raises(InputError, match="corrupt JPEG"):
        compressed_to_rgb(jpeg_claiming(textured_jpeg(), 1200, 1600))


def test_a_small_stream_declaring_a_huge_frame_is_refused_before_decoding() -> None:
    jpeg = jpeg_claiming(textured_jpeg(), 4000, 6000)  # ~30 KB declaring 72 MB
    png = png_claiming(5000, 6000)  # what an 87 KB PNG of one colour declares
    for stream in (jpeg, png):
        started = time.process_time()
        with pytest.raises(InputError, match="decompression bomb"):
            compressed_to_rgb(stream)
        # decoding 24-30 M pixels takes a second or more; reading a header microseconds
        assert time.process_time() - started < 0.5


def test_the_bomb_check_spares_real_frames() -> None:
    # A real 3000x4000 frame of one colour with some texture, above the checked size
    rng = np.random.default_rng(1)
    frame = np.full((3000, 4000, 3), 90, np.uint8)
    frame[::7, ::5] = rng.integers(0, 256, frame[::7, ::5].shape, dtype=np.uint8)
    _, encoded = cv2.imencode(".png", frame)
    assert frame.nbytes / encoded.nbytes < MAX_COMPRESSION_RATIO
    assert compressed_to_rgb(encoded.tobytes(), max_pixels=20_000_000).shape == frame.shape


def test_strict_decoding_matches_opencv() -> None:
    stream = textured_jpeg()
    strict = decode_jpeg_rgb(stream)
    assert strict is not None
    reference = cv2.cvtColor(cv2.imdecode(np.frombuffer(stream, np.uint8), 1), cv2.COLOR_BGR2RGB)
    # both are libjpeg-turbo with the same IDCT and upsampling; builds may round one level
    # differently
    assert np.abs(strict.astype(int) - reference.astype(int)).max() <= 1


@pytest.mark.parametrize("suffix", [".bmp", ".webp", ".ppm", ".png", ".jpg"])
def test_declared_size_reads_each_header(tmp_path: Path, suffix: str) -> None:
    image = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    _, encoded = cv2.imencode(suffix, image)
    kind, height, width = declared_size(encoded.tobytes()) or ("none", 0, 0)
    assert (height, width) == (37, 53), kind


def test_read_image_file_names_the_file_for_every_bad_case(tmp_path: Path) -> None:
    cases = {
        "empty.png": (b"", "empty file"),
        "text.png": (b"hello", "not a readable image"),
        "zeroed.jpg": (zeroed_jpeg(textured_jpeg()), "premature end"),
        "bomb.png": (png_claiming(5000, 6000), "decompression bomb"),
        "huge.png": (png_claiming(20_000, 20_000), "exceeds the limit"),
    }
    for name, (content, problem) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InputError, match=problem) as caught:
            read_image_file(tmp_path / name)
        assert str(caught.value).startswith(str(tmp_path / name))
    with pytest.raises(InputError, match="cannot read"):
        read_image_file(tmp_path / "missing.png")


def test_read_image_file_unchanged_keeps_labels(tmp_path: Path) -> None:
    label = np.array([[0, 1, 255], [1, 0, 7]], np.uint8)
    cv2.imwrite(str(tmp_path / "label.png"), label)
    read = read_image_file(tmp_path / "label.png", unchanged=True)
    assert read.dtype == np.uint8 and np.array_equal(read, label)
    with pytest.raises(InputError, match="decompression bomb"):
        (tmp_path / "bomb.png").write_bytes(png_claiming(20_000, 20_000))
        read_image_file(tmp_path / "bomb.png", max_pixels=400_000_000, unchanged=True)
