"""Array -> rclpy Image message: the pixels are copied once, or borrowed for publishing."""

import array

import numpy as np
import pytest

pytest.importorskip("rclpy")

from sensor_msgs.msg import Image
from std_msgs.msg import Header

from anomaly_seg_ros.io.image import array_to_raw
from anomaly_seg_ros.io.messages import decode_message
from anomaly_seg_ros.ros.messages import _KEEP_DATA, array_to_message, raw_to_message


def test_setter_keeps_the_array_it_is_given():
    """What raw_to_message relies on: with _KEEP_DATA the setter stores the array itself."""
    data = array.array("B", bytes(12))
    message = Image(**_KEEP_DATA)
    message.data = data
    assert message.data is data


@pytest.mark.parametrize("encoding", ["rgb8", "mono8", "32FC1"])
def test_message_round_trip(rng, encoding):
    if encoding == "rgb8":
        pixels = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    elif encoding == "mono8":
        pixels = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    else:
        pixels = rng.standard_normal((5, 7)).astype(np.float32)
    header = Header(frame_id="camera")
    message = array_to_message(pixels, encoding, header)
    assert (message.height, message.width, message.encoding) == (5, 7, encoding)
    assert message.header.frame_id == "camera"
    assert bytes(message.data) == np.ascontiguousarray(pixels).tobytes()
    if encoding == "rgb8":
        np.testing.assert_array_equal(decode_message(message), pixels)


def test_borrowed_message_views_the_pixels_and_crosses_dds_intact(ros_client, rng):
    """A borrowed message copies nothing until publish, and what arrives is the array."""
    from anomaly_seg_ros.ros.session import output_qos

    pixels = rng.standard_normal((33, 47)).astype(np.float32)
    raw = array_to_raw(pixels, "32FC1")
    message = raw_to_message(raw, Header(frame_id="borrowed"), borrow=True)
    assert np.shares_memory(np.asarray(message.data), pixels)
    received: list[bytes] = []
    node = ros_client.node
    topic = f"/borrowed_{id(message)}"
    subscription = node.create_subscription(
        Image, topic, lambda m: received.append((m.header.frame_id, bytes(m.data))), output_qos()
    )
    publisher = node.create_publisher(Image, topic, output_qos())
    try:
        ros_client.wait_for(lambda: publisher.get_subscription_count() > 0, 20.0, "subscriber")
        publisher.publish(message)
        ros_client.wait_for(lambda: received, 20.0, "the borrowed message")
    finally:
        node.destroy_publisher(publisher)
        node.destroy_subscription(subscription)
    assert received[0] == ("borrowed", pixels.tobytes())
    copied = raw_to_message(raw, Header())
    assert not np.shares_memory(np.frombuffer(copied.data, np.uint8), pixels)


@pytest.mark.parametrize(
    ("encoding", "frame_id"), [("rgb8", "cam"), ("mono8", "camera_optical"), ("32FC1", "")]
)
def test_image_cdr_is_what_rclpy_serialises(rng, encoding, frame_id):
    """The node's own serialisation: byte for byte rosbags' for the same image, and what
    rclpy reads back is the image, whatever the lengths of the strings before the pixels
    (CDR alignment; rclpy's own bytes differ only in padding, which Fast CDR leaves
    uninitialised)."""
    from rclpy.serialization import deserialize_message, serialize_message

    from anomaly_seg_ros.io.bags import IMAGE_TYPE, typestore
    from anomaly_seg_ros.io.messages import bag_image, image_cdr

    shape = (5, 7, 3) if encoding == "rgb8" else (5, 7)
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    if encoding == "32FC1":
        pixels = rng.standard_normal(shape).astype(np.float32)
    raw = array_to_raw(pixels, encoding)
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = 1_700_000_000, 123_456_789
    store = typestore()
    bag_header = store.types["std_msgs/msg/Header"](
        stamp=store.types["builtin_interfaces/msg/Time"](sec=1_700_000_000, nanosec=123_456_789),
        frame_id=frame_id,
    )
    cdr = image_cdr(store, raw, bag_header).tobytes()
    expected = serialize_message(raw_to_message(raw, header))
    assert len(cdr) == len(expected) and cdr[-pixels.nbytes :] == expected[-pixels.nbytes :]
    message = deserialize_message(cdr, Image)
    assert (message.header.frame_id, message.header.stamp.sec) == (frame_id, 1_700_000_000)
    assert message.header.stamp.nanosec == 123_456_789
    assert (message.height, message.width, message.encoding) == (5, 7, encoding)
    assert (message.step, message.is_bigendian) == (raw.step, False)
    assert bytes(message.data) == pixels.tobytes()
    image_class = store.types[IMAGE_TYPE]
    assert cdr == bytes(store.serialize_cdr(bag_image(image_class, raw, bag_header), IMAGE_TYPE))


def test_cdr_published_without_the_interpreter_lock_arrives_as_the_image(ros_client, rng):
    """publish_cdr (ctypes into rcl) reaches an ordinary subscriber as the same Image."""
    from anomaly_seg_ros.io.bags import cdr_message, typestore
    from anomaly_seg_ros.io.messages import image_cdr
    from anomaly_seg_ros.ros.serialized import lock_free_publishing, publish_cdr
    from anomaly_seg_ros.ros.session import output_qos

    assert lock_free_publishing()  # rcl found in this process (Linux)
    pixels = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    store = typestore()
    source = cdr_message(
        image_cdr(store, array_to_raw(pixels, "rgb8"), _bag_header(store, "lens", 42)).tobytes(),
        "sensor_msgs/msg/Image",
        "in the test",
    )
    received: list[Image] = []
    node = ros_client.node
    topic = f"/serialized_{id(received)}"
    subscription = node.create_subscription(Image, topic, received.append, output_qos())
    publisher = node.create_publisher(Image, topic, output_qos())
    try:
        ros_client.wait_for(lambda: publisher.get_subscription_count() > 0, 20.0, "subscriber")
        publish_cdr(publisher, image_cdr(store, array_to_raw(pixels, "rgb8"), source.header))
        ros_client.wait_for(lambda: received, 20.0, "the serialised image")
    finally:
        node.destroy_publisher(publisher)
        node.destroy_subscription(subscription)
    message = received[0]
    assert (message.header.frame_id, message.header.stamp.sec) == ("lens", 42)
    assert (message.height, message.width, message.encoding, message.step) == (
        480,
        640,
        "rgb8",
        1920,
    )
    np.testing.assert_array_equal(decode_message(message), pixels)


def _bag_header(store, frame_id, sec):
    stamp = store.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=0)
    return store.types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)
