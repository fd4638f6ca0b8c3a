"""Persistence: objects associated across frames into tracks with stable ids.

No ego-motion input. With a ground position, a track predicts where its object is now
with a constant-velocity model on the ground plane (a static obstacle seen from a moving
car moves at minus the car's velocity, which the model learns from two hits); an object
matches when it lies within ``gate_m + gate_range_fraction · range`` of the prediction.
Without ground positions (no camera or mount) image boxes match by IoU. Matching is
greedy, lowest cost first (a track and an object match at most once).

A track is **confirmed** once it was matched in ``confirm_hits`` of its last
``confirm_window`` frames, and stays confirmed until it is dropped: after ``max_age``
frames without a match. At most ``max_tracks`` tracks live at once, so memory is bounded
on any drive; ids come from one process-wide counter and are never reused.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np

from anomaly_seg_ros.objects.components import AnomalyObject
from anomaly_seg_ros.objects.settings import ObjectSettings

#: Speeds above this (m/s) are not believed (a bad match); the velocity is reset.
MAX_SPEED = 70.0
_IDS = itertools.count(1)


@dataclass(frozen=True)
class Track:
    """A tracked object as published.

    :param id: stable, unique in the process, never reused.
    :param age: frames since it was first seen (0 on its first frame).
    :param hits: frames it was matched in.
    :param confirmed: matched in ``confirm_hits`` of ``confirm_window`` frames.
    :param object: its latest observation; on a frame without a match, that observation
        with the ground position moved by the track's velocity (a prediction).
    :param misses: frames since its last match (0 = seen this frame).
    :param velocity: (forward, left) m/s on the ground in the vehicle frame, or None.
    """

    id: int
    age: int
    hits: int
    confirmed: bool
    object: AnomalyObject
    misses: int = 0
    velocity: tuple[float, float] | None = None


@dataclass
class _State:
    id: int
    first_ns: int
    last_ns: int
    age: int
    hits: int
    history: int
    confirmed: bool
    misses: int
    object: AnomalyObject
    velocity: np.ndarray | None

    def position(self) -> np.ndarray | None:
        ground = self.object.ground
        return None if ground is None else np.array([ground.forward_m, ground.left_m])

    def predicted(self, stamp_ns: int) -> np.ndarray | None:
        position = self.position()
        if position is None or self.velocity is None:
            return position
        return position + self.velocity * ((stamp_ns - self.last_ns) * 1e-9)


def _iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """(A, B) IoU of inclusive pixel boxes (A, 4) and (B, 4)."""
    x0 = np.maximum(boxes_a[:, None, 0], boxes_b[None, :, 0])
    y0 = np.maximum(boxes_a[:, None, 1], boxes_b[None, :, 1])
    x1 = np.minimum(boxes_a[:, None, 2], boxes_b[None, :, 2])
    y1 = np.minimum(boxes_a[:, None, 3], boxes_b[None, :, 3])
    inter = np.clip(x1 - x0 + 1, 0, None) * np.clip(y1 - y0 + 1, 0, None)

    area_a = (boxes_a[:, 2] - boxes_a[:, 0] + 1) * (boxes_a[:, 3] - boxes_a[:, 1] + 1)
    area_b = (boxes_b[:, 2] - boxes_b[:, 0] + 1) * (boxes_b[:, 3] - boxes_b[:, 1] + 1)
    iou: np.ndarray = inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1)
    return iou


def _moved(item: AnomalyObject, shift: np.ndarray) -> AnomalyObject:
    """``item`` with its ground position moved by ``shift`` (forward, left) metres."""
    ground = item.ground
    if ground is None or not np.any(shift):
        return item
    forward, left = ground.forward_m + float(shift[0]), ground.left_m + float(shift[1])
    points = ground.points.copy()
    points[:, :2] += shift.astype(np.float32)
    moved = replace(
        ground, forward_m=forward, left_m=left, range_m=math.hypot(forward, left), points=points
    )
    return replace(item, ground=moved)


class Tracker:
    """Associates each frame's objects with live tracks (see the module docstring)."""

    def __init__(self, settings: ObjectSettings) -> None:
        self.settings = settings
        self._tracks: list[_State] = []
        self._last_ns: int | None = None

    def reset(self) -> None:
        """Forget every track (ids are not reused)."""
        self._tracks = []
        self._last_ns = None

    def __len__(self) -> int:
        return len(self._tracks)

    def update(
        self, objects: list[AnomalyObject], stamp_ns: int
    ) -> tuple[list[Track], list[int], int]:
        """Add one frame.

        :param objects: the frame's objects (those first start tracks when the table is full).
        :param stamp_ns: the frame's stamp; one not after the previous frame's resets.
        :return: ``(tracks, dropped_ids, untracked)``: live tracks, ids dropped this frame,
            objects that started no track because ``max_tracks`` tracks were live.
        """
        settings = self.settings
        dropped: list[int] = []
        if self._last_ns is not None and stamp_ns <= self._last_ns:
            dropped = [state.id for state in self._tracks]
            self._tracks = []
        self._last_ns = stamp_ns
        matches = self._match(objects, stamp_ns)
        window_mask = (1 << settings.confirm_window) - 1
        matched_objects = set()
        for state_index, object_index in matches:
            state = self._tracks[state_index]
            item = objects[object_index]
            matched_objects.add(object_index)
            self._update_velocity(state, item, stamp_ns)
            state.object = item
            state.last_ns = stamp_ns
            state.hits += 1
            state.misses = 0
            state.history = ((state.history << 1) | 1) & window_mask
        matched_states = {state_index for state_index, _ in matches}
        kept: list[_State] = []
        for index, state in enumerate(self._tracks):
            state.age += 1
            if index not in matched_states:
                state.misses += 1
                state.history = (state.history << 1) & window_mask
                if state.misses > settings.max_age:
                    dropped.append(state.id)
                    continue
            kept.append(state)
        self._tracks = kept
        untracked = 0
        for index, item in enumerate(objects):
            if index in matched_objects:
                continue
            if len(self._tracks) >= settings.max_tracks:
                untracked += 1
                continue
            self._tracks.append(
                _State(next(_IDS), stamp_ns, stamp_ns, 0, 1, 1, False, 0, item, None)
            )
        tracks = []
        for state in self._tracks:
            if bin(state.history).count("1") >= settings.confirm_hits:
                state.confirmed = True
            tracks.append(self._published(state, stamp_ns))
        return tracks, dropped, untracked

    def _published(self, state: _State, stamp_ns: int) -> Track:
        item = state.object
        if state.misses and state.velocity is not None:
            item = _moved(item, state.velocity * ((stamp_ns - state.last_ns) * 1e-9))
        velocity = (
            None
            if state.velocity is None
            else (
                float(state.velocity[0]),
                float(state.velocity[1]),
            )
        )
        return Track(
            state.id, state.age, state.hits, state.confirmed, item, state.misses, velocity
        )

    def _update_velocity(self, state: _State, item: AnomalyObject, stamp_ns: int) -> None:
        before = state.position()
        dt = (stamp_ns - state.last_ns) * 1e-9
        if before is None or item.ground is None or dt <= 0:
            return
        measured = (np.array([item.ground.forward_m, item.ground.left_m]) - before) / dt
        if np.hypot(*measured) > MAX_SPEED:
            state.velocity = None
            return
        state.velocity = measured if state.velocity is None else 0.5 * (state.velocity + measured)

    def _match(self, objects: list[AnomalyObject], stamp_ns: int) -> list[tuple[int, int]]:
        """Greedy matching, lowest cost first: [(track index, object index)]."""
        if not self._tracks or not objects:
            return []
        settings = self.settings
        cost = np.full((len(self._tracks), len(objects)), np.inf)
        boxes_t = np.array([state.object.box for state in self._tracks], np.int64)
        boxes_o = np.array([item.box for item in objects], np.int64)
        iou = _iou(boxes_t, boxes_o)
        by_box = iou >= max(settings.min_iou, 1e-9)
        cost[by_box] = 1.0 - iou[by_box]
        predicted = [state.predicted(stamp_ns) for state in self._tracks]
        grounded_t = np.array([p is not None for p in predicted])
        grounded_o = np.array([item.ground is not None for item in objects])
        if grounded_t.any() and grounded_o.any():
            rows, columns = np.flatnonzero(grounded_t), np.flatnonzero(grounded_o)
            track_xy = np.array([predicted[i] for i in rows])
            object_xy = np.array(
                [[objects[j].ground.forward_m, objects[j].ground.left_m] for j in columns]  # type: ignore[union-attr]
            )
            ranges = np.hypot(object_xy[:, 0], object_xy[:, 1])
            gate = settings.gate_m + settings.gate_range_fraction * ranges
            distance = np.hypot(*(track_xy[:, None, :] - object_xy[None, :, :]).transpose(2, 0, 1))
            ground_cost = np.where(distance <= gate[None, :], distance / gate[None, :], np.inf)
            # Both on the ground: the ground decides (boxes of a moving car's view slide).
            cost[np.ix_(rows, columns)] = ground_cost
        pairs = np.argwhere(np.isfinite(cost))
        order = np.argsort(cost[pairs[:, 0], pairs[:, 1]], kind="stable")
        used_t: set[int] = set()
        used_o: set[int] = set()
        matches = []
        for track_index, object_index in pairs[order]:
            if track_index in used_t or object_index in used_o:
                continue
            used_t.add(int(track_index))
            used_o.add(int(object_index))
            matches.append((int(track_index), int(object_index)))
        return matches
