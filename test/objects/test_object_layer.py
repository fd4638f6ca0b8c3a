"""Components, filters and tracks of the object layer on masks drawn here."""

import math
import tracemalloc

import numpy as np
import pytest

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.objects import CameraMount, ObjectLayer, ObjectSettings
from anomaly_seg_ros.objects.camera import pinhole
from anomaly_seg_ros.objects.ground import GroundProjector

HEIGHT, WIDTH = 256, 512
CAMERA = pinhole(500.0, 255.5, 127.5, WIDTH, HEIGHT)
MOUNT = CameraMount(0.0, 0.0, 1.5, 0.0, math.radians(2.0), 0.0)
STEP_NS = 100_000_000


def _frame(boxes, score_value=2.0):
    mask = np.zeros((HEIGHT, WIDTH), bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0 : y1 + 1, x0 : x1 + 1] = True
    score = np.where(mask, np.float32(score_value), np.float32(-1.0)).astype(np.float32)
    return mask, score


def _box_on_ground(forward, left, width=0.6, height_px=12):
    """Pixel box of an obstacle whose front edge is ``forward`` m ahead."""
    projector = GroundProjector(CAMERA, MOUNT)
    corners = np.array([[forward, left + width / 2, 0.0], [forward, left - width / 2, 0.0]])
    (u0, v), (u1, _) = projector.project(corners)
    bottom = round(float(v) - 0.5)  # the pixel whose lower edge is the contact line
    return round(float(u0)), bottom - height_px, round(float(u1)), bottom


def test_objects_have_box_scores_road_fraction_and_position():
    layer = ObjectLayer(ObjectSettings(on_road_only=False, min_area_px=5), MOUNT)
    layer.set_camera(CAMERA)
    box = _box_on_ground(15.0, 1.0)
    mask, score = _frame([box, (0, 0, 9, 9)])
    score[box[1], box[0]] = 7.0
    road = np.zeros_like(mask)
    road[box[3], box[0] : (box[0] + box[2]) // 2] = True  # the left half of its bottom row
    frame = layer.process(mask, score, road, 0)
    first, corner = frame.objects
    assert first.box == box and first.area_px == (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
    assert first.peak_score == 7.0 and 2.0 < first.mean_score < 2.1
    assert first.on_road_fraction == pytest.approx(0.5, abs=0.05)
    assert not first.touches_border and corner.touches_border
    assert first.ground is not None
    # the box's rows are rounded to whole pixels: half a row is d²/(2fh) = 0.15 m at 15 m
    assert first.ground.forward_m == pytest.approx(15.0, abs=0.16)
    assert first.ground.left_m == pytest.approx(1.0, abs=0.05)
    assert first.ground.lateral_extent_m == pytest.approx(0.6, abs=0.05)
    assert corner.ground is None  # its contact (row 9.5) is above the horizon (row ~110)


def test_filters_on_road_and_area():
    mask, score = _frame([(100, 200, 120, 210), (300, 200, 302, 202)])
    road = np.zeros_like(mask)
    road[205:] = True
    layer = ObjectLayer(ObjectSettings(min_area_px=20), None)
    frame = layer.process(mask, score, road, 0)
    assert [o.box for o in frame.objects] == [(100, 200, 120, 210)]
    off_road = ObjectLayer(ObjectSettings(min_area_px=1), None)
    road[:] = False
    road[:10] = True  # road seen, but not under them
    assert off_road.process(mask, score, road, 0).objects == []
    road[:] = False  # no road seen at all: nothing to be off
    assert len(off_road.process(mask, score, road, 1).objects) == 2
    # no road region: on-road fraction NaN, nothing dropped for it
    kept = off_road.process(mask, score, None, 2 * STEP_NS).objects
    assert len(kept) == 2 and all(math.isnan(o.on_road_fraction) for o in kept)
    metric = ObjectLayer(
        ObjectSettings(min_area_px=1, on_road_only=False, min_area_m2=0.05), MOUNT
    )
    metric.set_camera(CAMERA)
    assert [o.area_px for o in metric.process(mask, score, None, 0).objects] == [231]


def test_k_of_n_confirmation_max_age_and_stable_ids():
    settings = ObjectSettings(confirm_hits=3, confirm_window=4, max_age=2, on_road_only=False)
    layer = ObjectLayer(settings, MOUNT)
    layer.set_camera(CAMERA)
    seen = [True, False, True, True, False, False, False, True]
    ids, confirmed, dropped = [], [], []
    for index, visible in enumerate(seen):
        # a static obstacle, approached at 4 m/s
        boxes = [_box_on_ground(20.0 - 0.4 * index, 0.0)] if visible else []
        frame = layer.process(*_frame(boxes), None, index * STEP_NS)
        ids.append([t.id for t in frame.tracks])
        confirmed.append([t.id for t in frame.confirmed])
        dropped.append(frame.dropped_ids)
    first = ids[0][0]
    assert ids[:6] == [[first]] * 6
    # hits on frames 0, 2, 3: 3 of the 4-frame window at frame 3
    assert confirmed[2] == [] and confirmed[3] == [first] and confirmed[5] == [first]
    # three misses (4, 5, 6) > max_age 2: dropped at frame 6; a new id afterwards
    assert dropped[6] == [first] and ids[6] == []
    assert ids[7] != [] and ids[7][0] > first and confirmed[7] == []


def test_tracks_follow_an_approaching_obstacle_by_ground_position():
    layer = ObjectLayer(
        ObjectSettings(on_road_only=False, confirm_hits=2, confirm_window=2), MOUNT
    )
    layer.set_camera(CAMERA)
    tracks = []
    for index in range(20):
        # 1.2 m per frame (43 km/h at 10 Hz): boxes barely overlap near the car
        boxes = [_box_on_ground(30.0 - 1.2 * index, -1.5), _box_on_ground(32.0 - 1.2 * index, 2.5)]
        frame = layer.process(*_frame(boxes), None, index * STEP_NS)
        tracks.append(sorted(t.id for t in frame.confirmed))
    assert all(t == tracks[1] for t in tracks[1:]) and len(tracks[1]) == 2
    velocity = frame.confirmed[0].velocity
    assert velocity is not None and velocity[0] == pytest.approx(-12.0, abs=1.0)


def test_time_going_backwards_resets_the_tracks():
    layer = ObjectLayer(ObjectSettings(on_road_only=False), None)
    mask, score = _frame([(100, 100, 120, 120)])
    old = layer.process(mask, score, None, 5 * STEP_NS).tracks[0].id
    frame = layer.process(mask, score, None, 1 * STEP_NS)
    assert frame.dropped_ids == [old] and frame.tracks[0].id != old


def test_memory_and_track_count_stay_bounded_over_10k_frames_of_random_blobs():
    settings = ObjectSettings(on_road_only=False, max_tracks=16, min_area_px=1)
    layer = ObjectLayer(settings, None)
    rng = np.random.default_rng(0)
    corners = rng.integers(0, 60, (10_000, 5, 2))
    score = np.ones((64, 64), np.float32)
    peak_tracks = 0
    settled = 0
    tracemalloc.start()
    for index in range(10_000):
        mask = np.zeros((64, 64), bool)
        for x, y in corners[index]:
            mask[y : y + 3, x : x + 3] = True  # five 3×3 blobs at random places
        frame = layer.process(mask, score, None, index * STEP_NS)
        peak_tracks = max(peak_tracks, len(frame.tracks))
        if index == 1_000:
            settled = tracemalloc.get_traced_memory()[0]
    grown = tracemalloc.get_traced_memory()[0] - settled
    tracemalloc.stop()
    assert peak_tracks == 16 and len(layer.tracker) <= 16
    assert grown < 100_000, grown  # no per-frame growth: 9,000 frames add under 100 kB


def test_thousands_of_specks_cost_a_bounded_pass_and_warn_once():
    settings = ObjectSettings(on_road_only=False, max_components=50, min_area_px=1)
    layer = ObjectLayer(settings, None)
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[::3, ::3] = True  # 86 × 171 isolated pixels
    score = mask.astype(np.float32)
    first = layer.process(mask, score, None, 0)
    assert len(first.objects) == 50
    assert len(first.warnings) == 1 and "14706 anomaly components" in first.warnings[0]
    assert layer.process(mask, score, None, STEP_NS).warnings == []


def test_bad_camera_and_mount_give_one_warning_and_no_position():
    mask, score = _frame([_box_on_ground(15.0, 0.0)])
    below = ObjectLayer(ObjectSettings(on_road_only=False), CameraMount(0, 0, -1.0, 0, 0, 0))
    below.set_camera(CAMERA)
    frame = below.process(mask, score, None, 0)
    assert frame.objects[0].ground is None and "below the ground" in frame.warnings[0]
    resized = ObjectLayer(ObjectSettings(on_road_only=False), MOUNT)
    resized.set_camera(pinhole(1000.0, 511.5, 255.5, 1024, 512))
    frame = resized.process(mask, score, None, 0)
    assert frame.objects[0].ground is None and "1024x512" in frame.warnings[0]
    nothing = ObjectLayer(ObjectSettings(on_road_only=False), MOUNT)
    frame = nothing.process(mask, score, None, 0)
    assert "no camera intrinsics" in frame.warnings[0]


@pytest.mark.parametrize(
    "values",
    [{"confirm_hits": 5, "confirm_window": 3}, {"max_tracks": 0}, {"gate_m": math.nan}],
)
def test_settings_refuse_impossible_values(values):
    with pytest.raises(ConfigError, match="object settings"):
        ObjectSettings(**values)


def test_large_masks_are_labelled_pooled_but_measured_exactly():
    mask = np.zeros((1025, 1025), bool)  # odd: the pooled grid is padded
    boxes = [(3, 5, 40, 61), (45, 5, 45, 6), (1000, 1019, 1024, 1024), (501, 300, 700, 333)]
    for x0, y0, x1, y1 in boxes:
        mask[y0 : y1 + 1, x0 : x1 + 1] = True
    score = np.where(mask, np.float32(1.0), np.float32(0.0))
    layer = ObjectLayer(ObjectSettings(on_road_only=False, min_area_px=1), None)
    objects = layer.process(mask, score, None, 0).objects
    found = sorted((o.box, o.area_px) for o in objects)
    areas = [(x1 - x0 + 1) * (y1 - y0 + 1) for x0, y0, x1, y1 in boxes]
    # the blocks of (40, ·) and (45, ·) are two apart: separate components still
    assert found == sorted(zip(boxes, areas, strict=True))
    bottom = next(o for o in objects if o.box == boxes[0])
    assert bottom.touches_border is False
