"""What the object messages carry, without ROS: the obstacle cloud's bytes, the marker list
(adds and deletes), the detection boxes (anomaly_seg_ros.io.object_messages)."""

from __future__ import annotations

import numpy as np

from anomaly_seg_ros.io.object_messages import (
    CLOUD_DTYPE,
    MARKER_MIN_WIDTH_M,
    MARKER_NAMESPACES,
    box_center_size,
    object_label,
    object_markers,
    obstacle_points,
)
from anomaly_seg_ros.objects import AnomalyObject, GroundPosition, Track


def track(
    track_id: int,
    forward: float | None = 10.0,
    points: int = 4,
    peak: float = 2.0,
    confirmed: bool = True,
    extent: float = 1.2,
) -> Track:
    ground = None
    if forward is not None:
        contact = np.zeros((points, 3), np.float32)
        contact[:, 0] = forward
        contact[:, 1] = np.linspace(-extent / 2, extent / 2, points)
        ground = GroundPosition(forward, 0.0, forward, extent, 0.1 * forward, contact)
    item = AnomalyObject((10, 20, 29, 39), 400, peak, peak / 2, 1.0, False, ground)
    return Track(track_id, 5, 4, confirmed, item)


def test_cloud_packs_each_positioned_objects_points_with_score_and_id() -> None:
    tracks = [track(7, 10.0, points=3, peak=1.5), track(8, None), track(9, 25.0, points=2)]
    cloud = obstacle_points(tracks)
    assert cloud.dtype == CLOUD_DTYPE and CLOUD_DTYPE.itemsize == 20
    assert cloud["id"].tolist() == [7, 7, 7, 9, 9]  # the one without position adds nothing
    assert cloud["x"].tolist() == [10.0] * 3 + [25.0] * 2
    assert cloud["score"].tolist() == [1.5] * 3 + [2.0] * 2
    np.testing.assert_allclose(cloud["y"][:3], [-0.6, 0.0, 0.6], atol=1e-6)
    # The byte layout a PointCloud2 reader sees: x y z score as float32, id as uint32.
    raw = cloud.tobytes()
    assert np.frombuffer(raw[16:20], "<u4")[0] == 7
    assert np.frombuffer(raw[:4], "<f4")[0] == 10.0
    assert obstacle_points([]).size == 0 and obstacle_points([track(1, None)]).size == 0


def test_markers_draw_confirmed_positions_and_delete_dropped_and_unplaced() -> None:
    shown, far = track(3, 12.0, peak=4.0), track(4, 30.0, peak=1.0, extent=0.05)
    no_position, tentative = track(5, None), track(6, 8.0, confirmed=False)
    assert not tentative.confirmed  # live, never drawn: no marker, no delete
    markers = object_markers([shown, far, no_position], [1, 2], 0.0)
    adds = {(m.namespace, m.marker_id): m for m in markers if m.add}
    assert set(adds) == {(ns, i) for ns in MARKER_NAMESPACES for i in (3, 4)}
    footprint = adds[(MARKER_NAMESPACES[0], 3)]
    assert footprint.position[:2] == (12.0, 0.0) and footprint.scale[0] == 1.2
    assert adds[(MARKER_NAMESPACES[0], 4)].scale[0] == MARKER_MIN_WIDTH_M  # still visible
    assert adds[(MARKER_NAMESPACES[1], 3)].text == "#3 12.0 m 4.00"
    # Higher score, redder: less green.
    assert adds[(MARKER_NAMESPACES[0], 3)].color[1] < adds[(MARKER_NAMESPACES[0], 4)].color[1]
    deletes = {(m.namespace, m.marker_id) for m in markers if not m.add}
    assert deletes == {(ns, i) for ns in MARKER_NAMESPACES for i in (1, 2, 5)}
    assert [m.add for m in markers] == sorted((m.add for m in markers), reverse=True)


def test_labels_and_boxes() -> None:
    assert object_label(track(11, None, peak=0.5)) == "#11 no range 0.50"
    # Inclusive pixel box 10..29 x 20..39: 20 x 20 pixels around (19.5, 29.5).
    assert box_center_size((10, 20, 29, 39)) == (19.5, 29.5, 20.0, 20.0)
    assert box_center_size((0, 0, 0, 0)) == (0.0, 0.0, 1.0, 1.0)
