"""The node's anomaly objects over real DDS: obstacle points, RViz markers, CameraInfo and
mounting problems (docs/objects_ros.md).

The tiny random model with ``threshold: -100`` marks every pixel anomalous: one object
covering the frame, whose bottom row is its ground contact. With the camera 1.5 m above
the ground looking 0.2 rad down, that row lies a few metres ahead.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from ros_harness import NodeUnderTest, camera_frame
from sensor_msgs.msg import CameraInfo, PointCloud2
from std_msgs.msg import Header
from test_node_behaviour import set_parameters
from visualization_msgs.msg import Marker, MarkerArray

from anomaly_seg_ros.ros.messages import array_to_message
from anomaly_seg_ros.ros.object_messages import message_module
from anomaly_seg_ros.ros.session import output_qos

HEIGHT, WIDTH = 48, 80
#: Every pixel anomalous, tracks confirmed after 2 of 3 frames and dropped after 1 missed.
PARAMETERS: dict[str, object] = {
    "qos_profile": "reliable",
    "threshold": -100.0,
    "object_on_road_only": False,
    "object_min_area_px": 1,
    "object_confirm_hits": 2,
    "object_confirm_window": 3,
    "object_max_age": 1,
    "camera_z": 1.5,
    "camera_pitch": 0.2,
    "vehicle_frame": "car",
}


def camera_info(
    height: int = HEIGHT, width: int = WIDTH, focal: float = 60.0, k: list[float] | None = None
) -> CameraInfo:
    """A pinhole calibration (no distortion) for ``height`` x ``width`` images."""
    matrix = k or [focal, 0.0, width / 2, 0.0, focal, height / 2, 0.0, 0.0, 1.0]
    return CameraInfo(
        header=Header(frame_id="cam"),
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=[0.0] * 5,
        k=matrix,
        p=[*matrix[:3], 0.0, *matrix[3:6], 0.0, *matrix[6:], 0.0],
    )


class ObjectTopics:
    """The test's subscriptions to a node's object outputs and its CameraInfo publisher."""

    def __init__(self, node: NodeUnderTest, names: tuple[str, ...]) -> None:
        classes: dict[str, type] = {"obstacle_points": PointCloud2, "object_markers": MarkerArray}
        if "detections" in names:
            from vision_msgs.msg import Detection2DArray

            classes["detections"] = Detection2DArray
        self.node = node
        self.lock = threading.Lock()
        self.messages: dict[str, list[object]] = defaultdict(list)
        client = node.client.node
        prefix = f"{node.namespace}/anomaly_seg_detector"
        self.subscriptions = [
            client.create_subscription(
                classes[name],
                f"{prefix}/{name}",
                lambda message, name=name: self._store(name, message),
                output_qos(100),
            )
            for name in names
        ]
        self.camera_info = client.create_publisher(CameraInfo, f"{node.namespace}/camera_info", 10)
        node.client.wait_for(
            lambda: (
                all(s.get_publisher_count() > 0 for s in self.subscriptions)
                and self.camera_info.get_subscription_count() > 0
            ),
            30.0,
            "object topics to connect",
        )

    def _store(self, name: str, message: object) -> None:
        with self.lock:
            self.messages[name].append(message)

    def last(self, name: str) -> object:
        with self.lock:
            return self.messages[name][-1]

    def send(self, index: int, info: CameraInfo | None, wait_for: str = "obstacle_points") -> None:
        """(CameraInfo, then) one frame; wait for one more ``wait_for`` message."""
        if info is not None:
            self.camera_info.publish(info)
            time.sleep(0.05)  # another topic: let the calibration arrive first
        with self.lock:
            before = len(self.messages[wait_for])
        header = Header(stamp=Time(sec=100 + index, nanosec=5 * index), frame_id="cam")
        self.node.publisher.publish(array_to_message(camera_frame(index), "rgb8", header))
        self.node.client.wait_for(
            lambda: len(self.messages[wait_for]) > before, 20.0, f"{wait_for} of frame {index}"
        )

    def close(self) -> None:
        client = self.node.client.node
        for subscription in self.subscriptions:
            client.destroy_subscription(subscription)
        client.destroy_publisher(self.camera_info)


def cloud_points(message: PointCloud2) -> np.ndarray:
    """The cloud as a structured array, read through its own field table."""
    kinds = {7: "<f4", 6: "<u4"}
    dtype = np.dtype(
        {
            "names": [field.name for field in message.fields],
            "formats": [kinds[field.datatype] for field in message.fields],
            "offsets": [field.offset for field in message.fields],
            "itemsize": message.point_step,
        }
    )
    return np.frombuffer(bytes(message.data), dtype)[: message.width * message.height]


def added(message: MarkerArray, namespace: str = "anomaly_objects") -> dict[int, Marker]:
    return {m.id: m for m in message.markers if m.action == Marker.ADD and m.ns == namespace}


def deleted(message: MarkerArray) -> set[int]:
    return {m.id for m in message.markers if m.action == Marker.DELETE}


def test_points_and_markers_with_the_camera_stamp_and_deletes(tiny_model, start_node) -> None:
    node = start_node({"model_path": tiny_model, **PARAMETERS}, outputs=())
    topics = ObjectTopics(node, ("obstacle_points", "object_markers"))
    info = camera_info()
    for index in range(3):
        topics.send(index, info, "object_markers")
        cloud = topics.last("obstacle_points")
        assert (cloud.header.stamp.sec, cloud.header.stamp.nanosec) == (100 + index, 5 * index)
        assert cloud.header.frame_id == "car"
        markers = topics.last("object_markers")
        assert all(m.header.frame_id == "car" for m in markers.markers)
    # Confirmed after 2 frames: one object, its ground points in the cloud.
    assert [(f.name, f.datatype, f.offset) for f in cloud.fields] == [
        ("x", 7, 0),
        ("y", 7, 4),
        ("z", 7, 8),
        ("score", 7, 12),
        ("id", 6, 16),
    ]
    assert cloud.point_step == 20 and cloud.height == 1 and not cloud.is_bigendian
    points = cloud_points(cloud)
    assert len(points) > 0
    shown = added(markers)
    assert len(shown) == 1
    ((track_id, marker),) = shown.items()
    assert set(points["id"]) == {track_id}
    # The bottom row of a camera 1.5 m up, 0.2 rad down, 60 px focal, seen 23.5 px below
    # the centre: on the ground ~1.5 / tan(0.2 + atan(23.5 / 60)) = 2.4 m ahead; the
    # contact's pixel centres and the layer's choice of points allow a few dm.
    expected = 1.5 / math.tan(0.2 + math.atan(23.5 / 60.0))
    assert np.allclose(points["z"], 0.0, atol=1e-4)
    assert np.all(np.abs(points["x"] - expected) < 0.5), (points["x"], expected)
    assert np.all(np.abs(points["y"]) < 3.0)
    assert np.all(np.isfinite(points["score"]))
    labels = added(markers, "anomaly_object_labels")
    assert labels[track_id].text.startswith(f"#{track_id} ") and " m " in labels[track_id].text
    assert abs(marker.pose.position.x - expected) < 0.5

    # The object stage's time is in /diagnostics beside the others.
    assert float(node.recorder.latest_diagnostics()["latency_objects_p50_ms"]) > 0.0

    # Nothing anomalous any more: the track misses a frame, is dropped, its markers deleted.
    assert set_parameters(node, threshold=1e9) == [(True, "")]
    for index in range(3, 6):
        topics.send(index, info, "object_markers")
        if track_id in deleted(topics.last("object_markers")):
            break
    else:
        raise AssertionError(f"no DELETE for marker {track_id}")
    assert added(topics.last("object_markers")) == {}
    assert cloud_points(topics.last("obstacle_points")).size == 0
    topics.close()
    assert node.close() == 0
    # Without the built anomaly_seg_msgs (and vision_msgs) the node says so once, and runs.
    assert node.process.output.count("no ~/objects") == 1, node.process.output


def test_objects_are_computed_only_while_subscribed(tiny_model, start_node) -> None:
    """Frames while nobody subscribes to an object output run no tracking: the track of a
    new subscriber starts at its first frame (confirmed on its second), not before."""
    node = start_node({"model_path": tiny_model, **PARAMETERS}, outputs=("labels",))
    info_publisher = node.client.node.create_publisher(
        CameraInfo, f"{node.namespace}/camera_info", 10
    )
    for index in range(4):
        info_publisher.publish(camera_info())
        before = node.recorder.count("labels")
        header = Header(stamp=Time(sec=100 + index), frame_id="cam")
        node.publisher.publish(array_to_message(camera_frame(index), "rgb8", header))
        node.client.wait_for(
            lambda before=before: node.recorder.count("labels") > before, 20.0, "labels"
        )
    node.client.node.destroy_publisher(info_publisher)
    topics = ObjectTopics(node, ("object_markers",))
    topics.send(4, camera_info(), "object_markers")
    assert added(topics.last("object_markers")) == {}  # a new, unconfirmed track
    topics.send(5, camera_info(), "object_markers")
    assert len(added(topics.last("object_markers"))) == 1
    topics.close()


def test_bad_camera_info_and_mount_warn_once_and_frames_still_come(tiny_model, start_node) -> None:
    node = start_node({"model_path": tiny_model, **PARAMETERS}, outputs=())
    topics = ObjectTopics(node, ("obstacle_points",))
    cases = [
        ("zeros", camera_info(k=[0.0] * 9)),
        ("nan", camera_info(k=[math.nan, 0.0, 40.0, 0.0, 60.0, 24.0, 0.0, 0.0, 1.0])),
        ("size", camera_info(height=96, width=160)),
    ]
    index = 0
    for _, info in cases:
        for _ in range(3):  # three frames each: one warning each (throttled)
            topics.send(index, info)
            index += 1
            # A frame is still published, without positions.
            assert cloud_points(topics.last("obstacle_points")).size == 0
    # A good calibration: positions again (confirmed on the 2nd frame).
    for _ in range(2):
        topics.send(index, camera_info())
        index += 1
    assert cloud_points(topics.last("obstacle_points")).size > 0
    # Mount below the ground, then looking at the sky (run-time changes).
    for mount in ({"camera_z": -1.0}, {"camera_z": 1.5, "camera_pitch": -1.2}):
        assert set_parameters(node, **mount) == [(True, "")] * len(mount)
        for _ in range(3):
            topics.send(index, None)
            index += 1
            assert cloud_points(topics.last("obstacle_points")).size == 0
    topics.close()
    assert node.close() == 0
    output = node.process.output
    assert output.count("bad CameraInfo") == 2, output  # zeros, NaN: each once
    warnings = [line for line in output.splitlines() if "WARN" in line]
    assert sum("160" in line and "80" in line for line in warnings) == 1, warnings  # size
    assert sum("ground" in line and "objects:" in line for line in warnings) >= 1, warnings
    assert sum("sky" in line for line in warnings) == 1, warnings


def test_detections_over_dds_when_vision_msgs_is_installed(tiny_model, start_node) -> None:
    module, why = message_module("vision_msgs/msg/Detection2DArray")
    if module is None:
        pytest.skip(f"vision_msgs is not installed here (no PyPI wheel): {why}")
    node = start_node({"model_path": tiny_model, **PARAMETERS}, outputs=())
    topics = ObjectTopics(node, ("detections",))
    for index in range(2):
        topics.send(index, camera_info(), "detections")
    message = topics.last("detections")
    assert (message.header.stamp.sec, message.header.frame_id) == (101, "cam")
    (detection,) = message.detections
    assert (detection.bbox.size_x, detection.bbox.size_y) == (80.0, 48.0)
    topics.close()
