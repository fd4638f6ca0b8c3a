"""The rclpy message builders of the object outputs (anomaly_seg_ros.ros.object_messages),
in process: what a subscriber deserialises is what the builders meant."""

from __future__ import annotations

import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from anomaly_seg_ros.io.object_messages import MarkerSpec, object_markers
from anomaly_seg_ros.objects import AnomalyObject, GroundPosition, ObjectFrame, Track
from anomaly_seg_ros.output_table import OBJECT_OUTPUTS
from anomaly_seg_ros.ros.object_messages import (
    detection_array_message,
    marker_array_message,
    message_module,
    object_message,
    point_cloud_message,
)

HEADER = Header(stamp=Time(sec=12, nanosec=34), frame_id="base_link")


def track(track_id: int, forward: float | None) -> Track:
    ground = None
    if forward is not None:
        points = np.array([[forward, -0.5, 0.0], [forward, 0.5, 0.0]], np.float32)
        ground = GroundPosition(forward, 0.0, forward, 1.0, 0.2, points)
    item = AnomalyObject((4, 6, 13, 25), 120, 3.5, 2.0, math.nan, True, ground)
    return Track(track_id, 3, 3, True, item)


def test_point_cloud_survives_serialisation() -> None:
    message = point_cloud_message([track(5, 14.0), track(6, None)], HEADER)
    back = deserialize_message(serialize_message(message), PointCloud2)
    assert back.header.stamp.sec == 12 and back.header.frame_id == "base_link"
    assert back.width == 2 and back.row_step == 40 and back.is_dense
    data = np.frombuffer(bytes(back.data), np.dtype("<f4,<f4,<f4,<f4,<u4"))
    assert data["f0"].tolist() == [14.0, 14.0] and data["f4"].tolist() == [5, 5]
    empty = point_cloud_message([], HEADER)
    assert empty.width == 0 and len(empty.data) == 0 and len(empty.fields) == 5


def test_markers_add_and_delete() -> None:
    specs = object_markers([track(5, 14.0)], [9], 0.0)
    message = deserialize_message(
        serialize_message(marker_array_message(specs, HEADER)), MarkerArray
    )
    kinds = [(m.ns, m.id, m.action, m.type) for m in message.markers]
    assert kinds == [
        ("anomaly_objects", 5, Marker.ADD, Marker.CYLINDER),
        ("anomaly_object_labels", 5, Marker.ADD, Marker.TEXT_VIEW_FACING),
        ("anomaly_objects", 9, Marker.DELETE, Marker.ARROW),
        ("anomaly_object_labels", 9, Marker.DELETE, Marker.ARROW),
    ]
    assert message.markers[1].text == "#5 14.0 m 3.50"
    assert message.markers[0].pose.position.x == pytest.approx(14.0)
    assert all(m.header.frame_id == "base_link" for m in message.markers)
    assert marker_array_message([MarkerSpec("anomaly_objects", 1, False)], HEADER).markers


def test_missing_message_packages_are_reported_not_raised() -> None:
    module, why = message_module("anomaly_seg_msgs/msg/AnomalyObjectArray")
    if module is None:
        assert why  # the node logs this reason once
    module, why = message_module("no_such_msgs/msg/Thing")
    assert module is None and "no_such_msgs" in why


def test_detections_when_vision_msgs_is_installed() -> None:
    module, why = message_module("vision_msgs/msg/Detection2DArray")
    if module is None:
        pytest.skip(f"vision_msgs is not installed here (no PyPI wheel): {why}")
    message = detection_array_message(module, [track(5, 14.0)], HEADER)
    back = deserialize_message(serialize_message(message), module.Detection2DArray)
    (detection,) = back.detections
    assert detection.id == "5" and detection.header.stamp.sec == 12
    position = detection.bbox.center.position
    assert (position.x, position.y) == (8.5, 15.5)
    assert (detection.bbox.size_x, detection.bbox.size_y) == (10.0, 20.0)
    target = detection.results[0].hypothesis
    assert target.class_id == "anomaly" and target.score == pytest.approx(3.5)


def test_every_object_row_has_a_builder_of_its_type() -> None:
    """A new object output in the table needs its message builder (object_message)."""
    frame = ObjectFrame([], [track(5, 14.0)], [track(5, 14.0)], [7])
    built = 0
    for row in OBJECT_OUTPUTS:
        module, _ = message_module(row.msgtype)
        if module is None:
            continue  # an optional package not installed here (its own tests skip too)
        message = object_message(row.name, frame, HEADER, "base_link", 0.0, module)
        assert isinstance(message, getattr(module, row.msgtype.rsplit("/", 1)[-1])), row.name
        built += 1
    assert built >= 2  # obstacle_points and object_markers need no optional package
