"""The detector node over real DDS: node in a subprocess, this process publishes/records."""

from __future__ import annotations

import dataclasses
import time

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from ros_harness import OUTPUT_NAMES, NodeUnderTest, camera_frame
from std_msgs.msg import Header

from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.io.image import RawImage, image_to_rgb
from anomaly_seg_ros.ros.messages import array_to_message, compressed_message, raw_to_message


def header(index: int) -> Header:
    return Header(stamp=Time(sec=1_000 + index, nanosec=7_000 * index), frame_id=f"cam{index}")


def pack(samples: np.ndarray, encoding: str, pad: int = 0, big: bool = False) -> RawImage:
    """Samples (H, W[, C]) as an image with ``pad`` junk bytes after every row."""
    height, width = samples.shape[:2]
    rows = samples.reshape(height, -1).view(np.uint8).reshape(height, -1)
    data = np.full((height, rows.shape[1] + pad), 0xAB, dtype=np.uint8)
    data[:, : rows.shape[1]] = rows
    return RawImage(encoding, height, width, data.shape[1], big, data)


def send(node: NodeUnderTest, message: object, names: tuple[str, ...] = ("labels",)) -> None:
    """Publish one message and wait until every named output has one more message."""
    before = {name: node.recorder.count(name) for name in names}
    node.publisher.publish(message)
    node.client.wait_for(
        lambda: all(node.recorder.count(name) > before[name] for name in names),
        20.0,
        f"outputs {names}",
    )


def last(node: NodeUnderTest, name: str) -> np.ndarray:
    with node.recorder.lock:
        message = node.recorder.messages[name][-1][1]
    if message.encoding == "32FC1":
        return np.frombuffer(message.data, "<f4").reshape(message.height, message.width)
    return image_to_rgb(message) if message.encoding == "rgb8" else _mono(message)


def _mono(message: object) -> np.ndarray:
    return np.frombuffer(message.data, np.uint8).reshape(message.height, message.width)


@pytest.fixture(scope="module")
def reference(tiny_model) -> Detector:
    """The same model in this process: what the node must reproduce."""
    return Detector.from_path(tiny_model, backend="onnxruntime")


def test_every_frame_gives_every_output_with_the_input_header(
    tiny_model, start_node, reference
) -> None:
    node = start_node({"model_path": tiny_model, "qos_profile": "reliable"})
    frames = 6
    for index in range(frames):
        message = array_to_message(camera_frame(index), "rgb8", header(index))
        send(node, message, OUTPUT_NAMES)
    expected = [(1_000 + i, 7_000 * i, f"cam{i}") for i in range(frames)]
    for name in OUTPUT_NAMES:
        assert node.recorder.stamps(name) == expected, name
    direct = reference.detect(camera_frame(frames - 1), outputs=("labels_color", "overlay"))
    np.testing.assert_array_equal(last(node, "labels"), direct.labels)
    np.testing.assert_allclose(last(node, "anomaly_score"), direct.score, atol=1e-4)
    np.testing.assert_array_equal(last(node, "anomaly_mask"), direct.mask * np.uint8(255))
    np.testing.assert_array_equal(last(node, "labels_color"), direct.labels_color)
    np.testing.assert_array_equal(last(node, "overlay"), direct.overlay)


def test_overlay_alone_and_pictures_with_a_full_mask(tiny_model, start_node, reference) -> None:
    """Only the overlay subscribed (its colours drawn for it alone), and a threshold that
    makes every pixel anomalous (the heat drawn over the whole frame): detect's images."""
    outputs = ("anomaly_mask", "overlay")
    node = start_node(
        {"model_path": tiny_model, "qos_profile": "reliable", "threshold": -100.0},
        outputs=outputs,
    )
    send(node, array_to_message(camera_frame(3), "rgb8", header(3)), outputs)
    before = reference.config
    reference.config = dataclasses.replace(before, threshold=-100.0)
    try:
        direct = reference.detect(camera_frame(3), outputs=("overlay",))
    finally:
        reference.config = before
    assert direct.mask.all()
    np.testing.assert_array_equal(last(node, "anomaly_mask"), direct.mask * np.uint8(255))
    np.testing.assert_array_equal(last(node, "overlay"), direct.overlay)


def test_encodings_row_padding_and_byte_order(tiny_model, start_node, reference) -> None:
    node = start_node({"model_path": tiny_model, "qos_profile": "reliable"})
    rgb = camera_frame(3)
    expected = reference.detect(rgb).labels
    lossless = {
        "rgb8": rgb,
        "bgr8": cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
        "rgba8": cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA),
        "bgra8": cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA),
    }
    for index, (encoding, samples) in enumerate(lossless.items()):
        send(node, raw_to_message(pack(samples, encoding, pad=7), header(index)))
        np.testing.assert_array_equal(last(node, "labels"), expected, err_msg=encoding)

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    send(node, raw_to_message(pack(grey, "mono8", pad=3), header(10)))
    grey_labels = last(node, "labels")
    wide = grey.astype(np.uint16) * 257
    for index, big in enumerate((False, True)):
        samples = wide.astype(">u2" if big else "<u2")
        send(node, raw_to_message(pack(samples, "mono16", pad=2, big=big), header(11 + index)))
        np.testing.assert_array_equal(last(node, "labels"), grey_labels, err_msg=f"big={big}")

    mosaic = np.zeros(rgb.shape[:2], np.uint8)
    mosaic[0::2, 0::2], mosaic[0::2, 1::2] = rgb[0::2, 0::2, 0], rgb[0::2, 1::2, 1]
    mosaic[1::2, 0::2], mosaic[1::2, 1::2] = rgb[1::2, 0::2, 1], rgb[1::2, 1::2, 2]
    others = {
        "bayer_rggb8": mosaic,
        "bayer_bggr8": mosaic,
        "bayer_gbrg8": mosaic,
        "bayer_grbg8": mosaic,
        "yuv422": cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_UYVY),
        "yuv422_yuy2": cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YUY2),
    }
    for index, (encoding, samples) in enumerate(others.items()):
        send(node, raw_to_message(pack(samples, encoding, pad=4), header(20 + index)))
        assert last(node, "labels").shape == rgb.shape[:2], encoding
    assert node.recorder.stamps("labels")[-1] == (1_025, 175_000, "cam25")


def wait_malformed(node, count: int, timeout: float = 20.0) -> None:
    """Wait until the node's diagnostics count ``count`` malformed frames."""
    deadline = time.monotonic() + timeout
    while (seen := node.recorder.latest_diagnostics()["frames_malformed"]) != str(count):
        assert time.monotonic() < deadline, f"frames_malformed stayed {seen}, expected {count}"


def test_compressed_input_and_corrupt_streams(tiny_model, start_node, reference) -> None:
    node = start_node(
        {
            "model_path": tiny_model,
            "qos_profile": "reliable",
            "input_compressed": True,
            "diagnostics_period": 0.2,
        }
    )
    rgb = camera_frame(4)
    send(node, compressed_message(rgb, header(1), fmt="png"))
    np.testing.assert_array_equal(last(node, "labels"), reference.detect(rgb).labels)
    jpeg = compressed_message(rgb, header(2), fmt="jpeg")
    send(node, jpeg)
    assert node.recorder.stamps("labels")[-1] == (1_002, 14_000, "cam2")

    broken = [bytes(jpeg.data)[: len(jpeg.data) // 2], b"\xff\xd8" + bytes(300), b"GIF89a"]
    for index, data in enumerate(broken):
        message = compressed_message(rgb, header(3), fmt="jpeg")
        message.data = np.frombuffer(data, np.uint8).tolist()
        node.publisher.publish(message)
        wait_malformed(node, index + 1)  # a newer frame would replace one not yet taken
    send(node, compressed_message(rgb, header(4), fmt="png"))
    diagnostics = node.recorder.latest_diagnostics()
    assert diagnostics["frames_malformed"] == "3"
    assert node.recorder.count("labels") == 3


def test_malformed_messages_are_counted_and_skipped(tiny_model, start_node) -> None:
    node = start_node(
        {
            "model_path": tiny_model,
            "qos_profile": "reliable",
            "max_image_pixels": 100_000,
            "diagnostics_period": 0.2,
        }
    )
    good = pack(camera_frame(0), "rgb8")
    bad = [
        good._replace(encoding="16UC7"),  # unknown encoding
        good._replace(data=good.data[:-1]),  # data shorter than step * height
        good._replace(height=0, width=0, step=0, data=good.data[:0]),  # zero size
        good._replace(step=good.width * 3 - 1),  # step smaller than a row
        RawImage("mono8", 400, 400, 400, False, np.zeros((400, 400), np.uint8)),  # too large
    ]
    for index, raw in enumerate(bad):
        node.publisher.publish(raw_to_message(raw, header(index)))
        wait_malformed(node, index + 1)  # a newer frame would replace one not yet taken
        send(node, raw_to_message(good, header(100 + index)))  # the next good frame works
    stamps = [stamp[0] for stamp in node.recorder.stamps("labels")]
    assert stamps == [1_100, 1_101, 1_102, 1_103, 1_104]
    diagnostics = node.recorder.latest_diagnostics()
    assert diagnostics["frames_malformed"] == str(len(bad))
    assert "exceeds the limit" in diagnostics["last_error"]
    assert diagnostics["frames_failed"] == "0"


def test_undeserializable_bytes_are_counted_and_skipped(tiny_model, start_node) -> None:
    """The node takes frames as CDR bytes and deserialises the one it infers on: bytes that
    are no Image (cut short, garbage) are one malformed frame each, named, and the next
    good frame is processed."""
    from rclpy.serialization import serialize_message

    node = start_node(
        {"model_path": tiny_model, "qos_profile": "reliable", "diagnostics_period": 0.2}
    )
    good = raw_to_message(pack(camera_frame(0), "rgb8"), header(0))
    cdr = serialize_message(good)
    broken = [cdr[: len(cdr) // 2], cdr[:40], b"\x00\x01\x00\x00" + bytes(7)]
    for index, data in enumerate(broken):
        node.publisher.publish(data)  # raw bytes, as a recorder replaying a bag would
        wait_malformed(node, index + 1)  # a newer frame would replace one not yet taken
        send(node, raw_to_message(pack(camera_frame(0), "rgb8"), header(100 + index)))
    stamps = [stamp[0] for stamp in node.recorder.stamps("labels")]
    assert stamps == [1_100, 1_101, 1_102]
    diagnostics = node.recorder.latest_diagnostics()
    assert diagnostics["frames_malformed"] == str(len(broken))
    assert "undeserializable sensor_msgs/msg/Image on /" in diagnostics["last_error"]
    assert diagnostics["frames_failed"] == "0"


def test_exif_orientation_is_ignored_and_garbage_scan_data_is_malformed(
    tiny_model, start_node
) -> None:
    from image_fixtures import exif_oriented_jpeg, overwritten_jpeg
    from sensor_msgs.msg import CompressedImage

    from anomaly_seg_ros.io.compressed import encode_compressed

    node = start_node(
        {"model_path": tiny_model, "qos_profile": "reliable", "input_compressed": True}
    )
    turned = CompressedImage(header=header(1), format="jpeg")
    turned.data = exif_oriented_jpeg(camera_frame(1), orientation=6)
    send(node, turned)
    assert last(node, "labels").shape == (48, 80)  # as stored, not turned to 80x48

    good = encode_compressed(
        np.ascontiguousarray(np.tile(camera_frame(2), (8, 8, 1))), "jpeg", quality=95
    )
    before = node.recorder.count("labels")
    for seed in range(3):
        damaged = CompressedImage(header=header(10 + seed), format="jpeg")
        damaged.data = overwritten_jpeg(good, seed)
        node.publisher.publish(damaged)
        time.sleep(0.2)
    diagnostics = node.recorder.latest_diagnostics(after=1.0)
    assert int(diagnostics["frames_malformed"]) == 3, diagnostics
    assert "corrupt JPEG" in diagnostics["last_error"]
    assert node.recorder.count("labels") == before  # nothing grey was published
    repaired = CompressedImage(header=header(20), format="jpeg")
    repaired.data = good
    send(node, repaired)  # the next good frame goes through
