"""The lock-step player's header parsing on raw CDR (its replay runs in test/demo)."""

import numpy as np
import pytest

from anomaly_seg_ros.io.bags import IMAGE_TYPE, typestore
from anomaly_seg_ros.ros.lockstep import cdr_stamp_ns


@pytest.mark.parametrize("little_endian", [True, False])
@pytest.mark.parametrize(("sec", "nanosec"), [(0, 0), (1_700_000_000, 999_999_999), (-5, 7)])
def test_cdr_stamp_matches_the_serialised_header(little_endian, sec, nanosec):
    store = typestore()
    header = store.types["std_msgs/msg/Header"](
        stamp=store.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
        frame_id="camera",
    )
    image = store.types[IMAGE_TYPE](
        header=header,
        height=2,
        width=3,
        encoding="mono8",
        is_bigendian=0,
        step=3,
        data=np.arange(6, dtype=np.uint8),
    )
    data = bytes(store.serialize_cdr(image, IMAGE_TYPE, little_endian=little_endian))
    assert cdr_stamp_ns(data) == sec * 1_000_000_000 + nanosec
