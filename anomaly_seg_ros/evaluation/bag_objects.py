"""The object layer run over a bag's frames and scored against its obstacle ground truth.

``anomaly-seg bag evaluate`` uses it when the bag (or ``--label-bag``) carries
``/ground_truth/obstacles`` (the synthetic drive writes it): the camera comes from the
bag's ``sensor_msgs/CameraInfo`` topic, the mount from ``--mount`` or the drive's
``description.json``. Writes ``objects.md``, ``objects.json`` and ``birds_eye.png``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.ground_objects import RANGE_BANDS, GroundObjectEvaluator
from anomaly_seg_ros.evaluation.object_truth import (
    CAMERA_INFO_TOPIC,
    OBSTACLES_TOPIC,
    TruthObstacle,
    mount_of,
    obstacles_from_json,
    read_description,
)
from anomaly_seg_ros.evaluation.report import _plain  # JSON-safe copy: NaN → None
from anomaly_seg_ros.io.bags import deserialize
from anomaly_seg_ros.objects import (
    CameraInfoError,
    CameraModel,
    CameraMount,
    ObjectLayer,
    ObjectSettings,
    camera_model_from_message,
)

#: A CameraInfo's camera model (the name the evaluation has always used).
camera_from_message = camera_model_from_message

LOGGER = logging.getLogger(__name__)


def _messages(reader: Any, topic: str) -> list[tuple[int, Any]]:
    connections = [c for c in reader.connections if c.topic == topic]
    found = []
    for connection, timestamp, raw in reader.messages(connections=connections):
        try:
            found.append((timestamp, deserialize(reader, raw, connection, timestamp)))
        except InputError as error:
            LOGGER.warning("%s; skipped", error)
    return found


class BagObjects:
    """Object layer + evaluator over one bag's frames, in bag order.

    :param reader: the open bag(s) with the ground truth.
    :param settings: object settings.
    :param mount: the camera mount (None: positions from the bags' description, else none).
    :param bags: the bag folders, for their ``description.json``.
    """

    def __init__(
        self,
        reader: Any,
        settings: ObjectSettings,
        mount: CameraMount | None,
        bags: Sequence[str | Path],
    ) -> None:
        if mount is None:
            for bag in bags:
                description = read_description(bag)
                if description is not None:
                    mount = mount_of(description)
                    break
        if mount is None:
            LOGGER.warning("no camera mount (--mount or description.json): objects unplaced")
        self.layer = ObjectLayer(settings, mount)
        self.evaluator = GroundObjectEvaluator()
        self.truth: dict[int, list[TruthObstacle]] = {}
        for _, message in _messages(reader, OBSTACLES_TOPIC):
            try:
                stamp, obstacles = obstacles_from_json(message.data)
            except InputError as error:
                LOGGER.warning("%s: %s; skipped", OBSTACLES_TOPIC, error)
                continue
            self.truth[stamp] = obstacles
        self.cameras: list[tuple[int, CameraModel | None]] = []
        for timestamp, message in _messages(reader, CAMERA_INFO_TOPIC):
            try:
                self.cameras.append((timestamp, camera_from_message(message)))
            except CameraInfoError as error:
                LOGGER.warning("%s at %d: %s", CAMERA_INFO_TOPIC, timestamp, error)
                self.cameras.append((timestamp, None))
        self.cameras.sort(key=lambda item: item[0])
        self._next_camera = 0
        self._scene: int | None = None

    def frame(
        self,
        stamp: int,
        mask: np.ndarray,
        score: np.ndarray,
        road_region: np.ndarray | None,
    ) -> None:
        """One frame of the bag (every frame, labelled or not, in bag order).

        The synthetic drive cuts from scene to scene (a jump no car makes): the tracks are
        reset at a cut, so that coasting tracks of the last scene do not count as false.
        """
        truth = self.truth.get(stamp)
        scenes = {obstacle.scene for obstacle in truth or ()}
        if len(scenes) == 1:
            scene = scenes.pop()
            if self._scene is not None and scene != self._scene:
                self.layer.reset()
            self._scene = scene
        while (
            self._next_camera < len(self.cameras) and self.cameras[self._next_camera][0] <= stamp
        ):
            self.layer.set_camera(self.cameras[self._next_camera][1])
            self._next_camera += 1
        result = self.layer.process(mask, score, road_region, stamp)
        for line in result.warnings:
            LOGGER.warning("objects at stamp %d: %s", stamp, line)
        if truth is not None:
            self.evaluator.process(result, truth)

    def write(self, folder: Path, title: str) -> dict[str, Any]:
        """``objects.json``, ``objects.md`` and ``birds_eye.png`` into ``folder``.

        :return: the figures (``objects.json``'s content: NaN as None).
        """
        figures = self.evaluator.evaluate()
        figures["settings"] = {
            key: getattr(self.layer.settings, key)
            for key in self.layer.settings.__dataclass_fields__
        }
        plain = _plain(figures)
        if not isinstance(plain, dict):
            raise TypeError("object figures must stay a mapping")
        figures = plain
        (folder / "objects.json").write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
        (folder / "objects.md").write_text("\n".join(objects_markdown(figures)) + "\n")
        plot_birds_eye(self.evaluator.positions, folder / "birds_eye.png", title)
        return figures


def objects_markdown(figures: dict[str, Any]) -> list[str]:
    """The object figures as a Markdown section."""

    def number(value: Any, digits: int = 2) -> str:
        return (
            "–"
            if value is None or (isinstance(value, float) and math.isnan(value))
            else (f"{value:.{digits}f}")
        )

    error_m, error_pct = figures["position_error_m"], figures["position_error_percent"]
    near_pct = figures["position_error_percent_within_40m"]
    lines = [
        "## Objects against the 3D ground truth",
        "",
        f"* frames: {figures['frames']}; confirmed objects: {figures['confirmed_objects']} "
        f"({figures['confirmed_without_position']} without position)",
        f"* false confirmed objects per frame: {number(figures['false_confirmed_per_frame'])}"
        f" ({figures['false_confirmed']} in all)",
        f"* found-rate of on-road obstacles within 40 m: "
        f"{number(figures['found_rate_within_40m'])}",
        f"* position error: median {number(error_m['median'])} m "
        f"({number(error_pct['median'], 1)} % of range), p90 {number(error_m['p90'])} m "
        f"({number(error_pct['p90'], 1)} %); within 40 m: median "
        f"{number(near_pct['median'], 1)} %, p90 {number(near_pct['p90'], 1)} %",
        f"* frames from first visible to confirmed: median "
        f"{number(figures['frames_to_confirm']['median'], 1)}, p90 "
        f"{number(figures['frames_to_confirm']['p90'], 1)} "
        f"({figures['obstacles_confirmed']} of {figures['obstacles_seen']} obstacles confirmed)",
        "",
        "| range | obstacle-frames | found (confirmed) | found-rate | detected-rate (raw) |",
        "|---|---:|---:|---:|---:|",
    ]
    for band in figures["by_range"]:
        lines.append(
            f"| {band['low_m']:.0f}–{band['high_m']:.0f} m | {band['obstacles']} | "
            f"{band['found']} | {number(band['found_rate'])} | "
            f"{number(band['detected_rate'])} |"
        )
    return lines


def plot_birds_eye(positions: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Confirmed objects (coloured by id) against ground truth (black), every frame, in
    the vehicle frame seen from above (forward up, left to the left)."""
    from anomaly_seg_ros.evaluation.plots import _pyplot, _save

    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=(5, 7))
    truth = [(f, left, seen) for frame in positions for f, left, seen in frame["truth"]]
    if truth:
        forward, left, seen = (np.asarray(values) for values in zip(*truth, strict=True))
        axes.scatter(
            left[seen], forward[seen], s=10, marker="s", color="black", label="obstacle (visible)"
        )
        axes.scatter(
            left[~seen], forward[~seen], s=10, marker="s", color="0.75", label="obstacle (hidden)"
        )
    tracks = [item for frame in positions for item in frame["tracks"]]
    if tracks:
        ids, forward, left = (np.asarray(values) for values in zip(*tracks, strict=True))
        axes.scatter(left, forward, s=6, c=ids % 20, cmap="tab20", label="confirmed object")
    axes.set_xlabel("left (m)")
    axes.set_ylabel("forward (m)")
    axes.set_xlim(15, -15)
    axes.set_ylim(0, RANGE_BANDS[-1][1])
    for _, high in RANGE_BANDS[:-1]:
        axes.axhline(high, color="0.85", linewidth=0.8)
    axes.set_title(title or "objects, bird's eye")
    axes.legend(loc="upper right", fontsize=7)
    _save(figure, path)
    pyplot.close(figure)
