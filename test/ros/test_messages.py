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
