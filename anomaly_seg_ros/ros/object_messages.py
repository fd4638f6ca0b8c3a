"""One frame's anomaly objects -> rclpy messages: plain functions over
:mod:`anomaly_seg_ros.io.object_messages`.

Two message packages are optional: ``anomaly_seg_msgs`` (this repository's interface
package, built by colcon beside the node: ``msgs/anomaly_seg_msgs``) and ``vision_msgs``
(a rosdep key on a car). :func:`message_module` says whether each can be used.
"""

from __future__ import annotations

import array
import importlib
from collections.abc import Sequence
from typing import Any

from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from sensor_msgs.msg import PointCloud2, PointField, RegionOfInterest
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from anomaly_seg_ros.io.object_messages import (
    ANOMALY_CLASS_ID,
    CLOUD_DTYPE,
    CLOUD_FIELDS,
    CLOUD_OFFSETS,
    MarkerSpec,
    anomaly_object_fields,
    box_center_size,
    object_markers,
    obstacle_points,
)
from anomaly_seg_ros.objects import ObjectFrame, Track
from anomaly_seg_ros.output_table import output


def message_module(msgtype: str) -> tuple[Any | None, str]:
    """Import the message package of ``msgtype``, checking that its type support loads too.

    :param msgtype: ``package/msg/Name``, e.g. ``anomaly_seg_msgs/msg/AnomalyObjectArray``.
    :return: (the package's ``msg`` module, "") or (None, why it cannot be used): not
        installed, or built but not sourced (the Python classes import, their C type
        support does not).
    """
    package, _, name = msgtype.partition("/msg/")
    try:
        loaded = importlib.import_module(f"{package}.msg")
        message_class = getattr(loaded, name)
        # The generated classes import; their C type support loads only on first use.
        type(message_class).__import_type_support__()
    except (ImportError, AttributeError) as error:
        return None, f"{type(error).__name__}: {error}"
    except Exception as error:  # rosidl's UnsupportedTypeSupport (a plain Exception)
        return None, f"{type(error).__name__}: {error}"
    return loaded, ""


def with_frame(header: Header, frame_id: str) -> Header:
    """``header``'s stamp with another frame."""
    return Header(stamp=header.stamp, frame_id=frame_id)


def object_array_message(
    module: Any,
    confirmed: Sequence[Track],
    dropped_ids: Sequence[int],
    header: Header,
    vehicle_frame: str,
) -> Any:
    """An ``anomaly_seg_msgs/AnomalyObjectArray`` of the confirmed tracks.

    :param module: the imported ``anomaly_seg_msgs.msg``.
    :param confirmed: the confirmed tracks.
    :param dropped_ids: tracks dropped this frame.
    :param header: the camera image's header (stamp; its frame becomes camera_frame_id).
    :param vehicle_frame: the frame of the positions (the message's header.frame_id).
    """
    nested = {"box": RegionOfInterest, "position": Point, "velocity": Vector3}
    objects = []
    for track in confirmed:
        values = anomaly_object_fields(track)
        for name, message_class in nested.items():
            fields = values.pop(name)
            if fields is not None:  # None: the type's default (no velocity)
                values[name] = message_class(**fields)
        message = module.AnomalyObject(**values)
        objects.append(message)
    return module.AnomalyObjectArray(
        header=with_frame(header, vehicle_frame),
        camera_frame_id=header.frame_id,
        objects=objects,
        dropped_ids=[int(value) for value in dropped_ids],
    )


def detection_array_message(module: Any, confirmed: Sequence[Track], header: Header) -> Any:
    """A ``vision_msgs/Detection2DArray`` of the confirmed tracks' image boxes.

    Each detection: ``id`` = the track id, one hypothesis ``class_id`` "anomaly" with the
    peak score; the header is the camera image's (the boxes are its pixels).

    :param module: the imported ``vision_msgs.msg``, 4.x (Humble and later: the box centre
        is ``center.position``, the hypothesis ``hypothesis.class_id``).
    """
    detections = []
    for track in confirmed:
        center_x, center_y, width, height = box_center_size(track.object.box)
        detection = module.Detection2D(header=header, id=str(track.id))
        detection.bbox.center.position.x = center_x
        detection.bbox.center.position.y = center_y
        detection.bbox.size_x, detection.bbox.size_y = width, height
        hypothesis = module.ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = ANOMALY_CLASS_ID
        hypothesis.hypothesis.score = float(track.object.peak_score)
        detection.results = [hypothesis]
        detections.append(detection)
    return module.Detection2DArray(header=header, detections=detections)


def point_cloud_message(confirmed: Sequence[Track], header: Header) -> PointCloud2:
    """``sensor_msgs/PointCloud2`` of the confirmed tracks' ground contact points.

    :param confirmed: the confirmed tracks (those without position add no points).
    :param header: stamp of the camera image, frame_id = the vehicle frame.
    :return: an unorganised cloud (height 1), fields x y z score id (see
        :data:`~anomaly_seg_ros.io.object_messages.CLOUD_FIELDS`); empty when there is no
        obstacle, so that a costmap clears.
    """
    points = obstacle_points(confirmed)
    data = array.array("B")
    data.frombytes(points.tobytes())
    return PointCloud2(
        header=header,
        height=1,
        width=len(points),
        fields=[
            PointField(name=name, offset=CLOUD_OFFSETS[name], datatype=kind, count=1)
            for name, _, kind in CLOUD_FIELDS
        ],
        is_bigendian=False,
        point_step=CLOUD_DTYPE.itemsize,
        row_step=CLOUD_DTYPE.itemsize * len(points),
        data=data,
        is_dense=True,
    )


def marker_message(spec: MarkerSpec, header: Header) -> Marker:
    """One ``visualization_msgs/Marker`` from its spec (cylinder or view-facing text)."""
    marker = Marker(
        header=header,
        ns=spec.namespace,
        id=int(spec.marker_id),
        action=Marker.ADD if spec.add else Marker.DELETE,
    )
    if not spec.add:
        return marker
    marker.type = Marker.TEXT_VIEW_FACING if spec.text else Marker.CYLINDER
    x, y, z = spec.position
    marker.pose = Pose(position=Point(x=x, y=y, z=z), orientation=Quaternion(w=1.0))
    marker.scale = Vector3(x=spec.scale[0], y=spec.scale[1], z=spec.scale[2])
    red, green, blue, alpha = spec.color
    marker.color = ColorRGBA(r=red, g=green, b=blue, a=alpha)
    marker.text = spec.text
    marker.lifetime = Duration(sec=0, nanosec=0)  # until replaced or deleted
    return marker


def marker_array_message(specs: Sequence[MarkerSpec], header: Header) -> MarkerArray:
    """``visualization_msgs/MarkerArray`` of :func:`object_markers`' specs, all with
    ``header`` (camera stamp, vehicle frame)."""
    return MarkerArray(markers=[marker_message(spec, header) for spec in specs])


def object_message(
    name: str,
    frame: ObjectFrame,
    header: Header,
    vehicle_frame: str,
    threshold: float,
    module: Any | None = None,
) -> Any:
    """One object output of one frame (see :data:`~anomaly_seg_ros.output_table.OUTPUTS`).

    :param name: ``objects``, ``detections``, ``obstacle_points`` or ``object_markers``.
    :param frame: the object layer's frame.
    :param header: the camera image's header (its stamp goes on every message).
    :param vehicle_frame: frame of positions, points and markers.
    :param threshold: the mask threshold (the markers' colour scale starts there).
    :param module: the message module of ``objects`` (``anomaly_seg_msgs.msg``) or
        ``detections`` (``vision_msgs.msg``).
    :raises ValueError: an unknown name, or ``objects``/``detections`` without module.
    """
    if name in ("objects", "detections") and module is None:
        raise ValueError(f"~/{name} needs its message module ({output(name).msgtype})")
    if name == "objects":
        return object_array_message(
            module, frame.confirmed, frame.dropped_ids, header, vehicle_frame
        )
    if name == "detections":
        return detection_array_message(module, frame.confirmed, header)
    vehicle = with_frame(header, vehicle_frame)
    if name == "obstacle_points":
        return point_cloud_message(frame.confirmed, vehicle)
    if name == "object_markers":
        specs = object_markers(frame.confirmed, frame.dropped_ids, threshold)
        return marker_array_message(specs, vehicle)
    raise ValueError(f"unknown object output {name!r}")
