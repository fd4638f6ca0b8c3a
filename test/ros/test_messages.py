"""Array -> rclpy Image message: the pixels are copied once, not twice."""

import array

import numpy as np
import pytest

pytest.importorskip("rclpy")

from sensor_msgs.msg import Image
from std_msgs.msg import Header

from anomaly_seg_ros.io.messages import decode_message
from anomaly_seg_ros.ros.messages import _KEEP_DATA, array_to_message


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
