"""What the node publishes about anomaly objects, as plain data (no rclpy).

The object layer (:mod:`anomaly_seg_ros.objects`) gives tracks; this module turns one
frame's tracks into what the messages carry: the obstacle point cloud's packed bytes, the
RViz markers and the detection boxes. :mod:`anomaly_seg_ros.ros.object_messages` wraps the
results into rclpy messages; tests and bag tools use them without ROS.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from anomaly_seg_ros.objects import GroundPosition, Track
from anomaly_seg_ros.output_table import OBJECT_OUTPUTS

#: The object outputs (rows of :data:`~anomaly_seg_ros.output_table.OUTPUTS`: name,
#: toggle, message type), in table order.
OBJECT_TOPICS = OBJECT_OUTPUTS
#: The object outputs ``anomaly-seg bag run`` writes (``detections`` needs vision_msgs,
#: which the rosbags typestore lacks).
BAG_OBJECT_NAMES: tuple[str, ...] = tuple(topic.name for topic in OBJECT_TOPICS if topic.in_bag)

#: The obstacle cloud's point layout: (name, numpy dtype, ``sensor_msgs/PointField``
#: datatype: 7 = FLOAT32, 6 = UINT32). x, y, z in the vehicle frame (z = 0: the ground);
#: score: the object's peak anomaly score; id: its track id.
CLOUD_FIELDS: tuple[tuple[str, str, int], ...] = (
    ("x", "<f4", 7),
    ("y", "<f4", 7),
    ("z", "<f4", 7),
    ("score", "<f4", 7),
    ("id", "<u4", 6),
)
CLOUD_DTYPE = np.dtype([(name, dtype) for name, dtype, _ in CLOUD_FIELDS])
#: Byte offset of each field in a point (packed, no padding).
CLOUD_OFFSETS: dict[str, int] = {
    name: sum(np.dtype(kind).itemsize for _, kind, _ in CLOUD_FIELDS[:index])
    for index, (name, _, _) in enumerate(CLOUD_FIELDS)
}

#: The class every detection carries (vision_msgs ``ObjectHypothesis.class_id``).
ANOMALY_CLASS_ID = "anomaly"
#: Marker namespaces: the object's footprint and its text.
MARKER_NAMESPACES = ("anomaly_objects", "anomaly_object_labels")
#: Height of the drawn footprint (the flat-ground model knows no object height), metres.
MARKER_HEIGHT_M = 1.0
#: Smallest drawn footprint width, metres (a sliver would be invisible in RViz).
MARKER_MIN_WIDTH_M = 0.3


def camera_info_topic(image_topic: str) -> str:
    """The CameraInfo topic beside ``image_topic``, as camera drivers and image_transport
    name it: ``/cam/image_raw`` -> ``/cam/camera_info``; a relative name stays relative."""
    parent = image_topic.rsplit("/", 1)[0] if "/" in image_topic else ""
    return f"{parent}/camera_info" if parent or image_topic.startswith("/") else "camera_info"


#: Fields of ``anomaly_seg_msgs/AnomalyObject`` that are messages themselves (with their types).
NESTED_OBJECT_FIELDS = {
    "box": "sensor_msgs/msg/RegionOfInterest",
    "position": "geometry_msgs/msg/Point",
    "velocity": "geometry_msgs/msg/Vector3",
}


def anomaly_object_fields(track: Track) -> dict[str, Any]:
    """The field values of one ``anomaly_seg_msgs/AnomalyObject`` (``msgs/anomaly_seg_msgs/msg
    /AnomalyObject.msg``) as plain data, for the rclpy and the rosbags builders alike: the
    :data:`NESTED_OBJECT_FIELDS` as dicts of their fields (``velocity`` None without one);
    no position = NaN position, range, extent and sigma.
    """
    item, ground = track.object, track.object.ground
    x_min, y_min, x_max, y_max = item.box
    nan = math.nan
    position = (ground.forward_m, ground.left_m, 0.0) if ground else (nan, nan, nan)
    velocity = track.velocity
    return {
        "id": track.id,
        "age": track.age,
        "hits": track.hits,
        "confirmed": track.confirmed,
        "misses": track.misses,
        "box": {
            "x_offset": x_min,
            "y_offset": y_min,
            "width": x_max - x_min + 1,
            "height": y_max - y_min + 1,
        },
        "area_px": item.area_px,
        "peak_score": float(item.peak_score),
        "mean_score": float(item.mean_score),
        "on_road_fraction": float(item.on_road_fraction),
        "touches_border": bool(item.touches_border),
        "has_position": ground is not None,
        "position": dict(zip("xyz", map(float, position))),
        "range_m": float(ground.range_m) if ground else nan,
        "lateral_extent_m": float(ground.lateral_extent_m) if ground else nan,
        "range_sigma_m": float(ground.range_sigma_m) if ground else nan,
        "has_velocity": velocity is not None,
        "velocity": None
        if velocity is None
        else {"x": float(velocity[0]), "y": float(velocity[1])},
    }


def positioned(tracks: Iterable[Track]) -> list[tuple[Track, GroundPosition]]:
    """The tracks whose latest object has a ground position, with that position."""
    return [(track, track.object.ground) for track in tracks if track.object.ground is not None]


def obstacle_points(tracks: Sequence[Track]) -> np.ndarray:
    """The ground contact points of ``tracks`` as one packed cloud.

    :param tracks: the confirmed tracks; those without a ground position add nothing.
    :return: (N,) structured array of :data:`CLOUD_DTYPE` (little-endian, 20 bytes a
        point), points of one object together, objects in ``tracks`` order.
    """
    parts = []
    for track, ground in positioned(tracks):
        points = np.asarray(ground.points, dtype=np.float32).reshape(-1, 3)
        part = np.empty(len(points), CLOUD_DTYPE)
        part["x"], part["y"], part["z"] = points[:, 0], points[:, 1], points[:, 2]
        part["score"] = track.object.peak_score
        part["id"] = track.id
        parts.append(part)
    return np.concatenate(parts) if parts else np.empty(0, CLOUD_DTYPE)


@dataclass(frozen=True)
class MarkerSpec:
    """One RViz marker to add or delete (``visualization_msgs/Marker`` fields).

    :param namespace: one of :data:`MARKER_NAMESPACES`.
    :param marker_id: the track id.
    :param add: True = ADD/modify, False = DELETE.
    :param position: (x, y, z) in the vehicle frame (ADD only).
    :param scale: (x, y, z) metres; for text only z (the letter height) counts.
    :param color: (r, g, b, a) in 0..1.
    :param text: the label (text markers).
    """

    namespace: str
    marker_id: int
    add: bool
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    color: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    text: str = ""


def object_label(track: Track) -> str:
    """The marker text: track id, range and peak score (``#12 23.4 m 0.87``)."""
    ground = track.object.ground
    distance = f"{ground.range_m:.1f} m" if ground is not None else "no range"
    return f"#{track.id} {distance} {track.object.peak_score:.2f}"


def score_color(score: float, low: float, high: float) -> tuple[float, float, float, float]:
    """Yellow (at ``low``) to red (at ``high`` and above), opaque enough to see the road."""
    span = high - low
    share = float(np.clip((score - low) / span, 0.0, 1.0)) if span > 0 else 1.0
    return (1.0, 1.0 - share, 0.0, 0.8)


def object_markers(
    confirmed: Sequence[Track],
    dropped_ids: Iterable[int],
    threshold: float,
) -> list[MarkerSpec]:
    """RViz markers of one frame.

    Each confirmed track with a ground position gets a footprint cylinder (as wide as the
    object's lateral extent) and a text label, both with the track id as marker id. The
    ids that may still have a marker on the screen get DELETE in both namespaces: tracks
    dropped this frame, and confirmed ones without a position now (a track stays confirmed
    until it is dropped, so tentative ones never had a marker and cost nothing). Deleting a
    marker RViz does not have is harmless.

    :param confirmed: the confirmed tracks.
    :param dropped_ids: the tracks dropped this frame.
    :param threshold: the mask threshold (the colour scale starts there).
    :return: the markers, adds first.
    """
    shown = positioned(confirmed)
    peak = max((track.object.peak_score for track, _ in shown), default=threshold)
    markers: list[MarkerSpec] = []
    for track, ground in shown:
        width = max(float(ground.lateral_extent_m), MARKER_MIN_WIDTH_M)
        color = score_color(track.object.peak_score, threshold, max(peak, threshold + 1.0))
        base = (float(ground.forward_m), float(ground.left_m))
        markers.append(
            MarkerSpec(
                MARKER_NAMESPACES[0],
                track.id,
                True,
                (*base, MARKER_HEIGHT_M / 2),
                (width, width, MARKER_HEIGHT_M),
                color,
            )
        )
        markers.append(
            MarkerSpec(
                MARKER_NAMESPACES[1],
                track.id,
                True,
                (*base, MARKER_HEIGHT_M + 0.5),
                (0.0, 0.0, 0.6),
                (1.0, 1.0, 1.0, 1.0),
                object_label(track),
            )
        )
    drawn = {track.id for track, _ in shown}
    stale = sorted({*dropped_ids, *(track.id for track in confirmed)} - drawn)
    for marker_id in stale:
        markers.extend(MarkerSpec(namespace, marker_id, False) for namespace in MARKER_NAMESPACES)
    return markers


def box_center_size(box: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    """Centre (x, y) and size (width, height) of an inclusive pixel box, in pixels as
    ``vision_msgs/BoundingBox2D`` wants them (pixel centres at integer coordinates)."""
    x_min, y_min, x_max, y_max = box
    return (
        (x_min + x_max) / 2.0,
        (y_min + y_max) / 2.0,
        float(x_max - x_min + 1),
        float(y_max - y_min + 1),
    )
