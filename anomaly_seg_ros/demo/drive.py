"""A short synthetic drive: the camera moves forward through a few scenes of the synthetic
world, towards anomalies lying on the road, with pixel-exact ground truth.

The world (``training/synthetic``) renders one frame from a random generator; the same
generator state gives the same scene. A drive re-renders one scene per *clip* with a
camera that is moved along the road (:class:`MovingCamera` shifts every world point's
distance before projection), so consecutive frames show one street from successive
positions. The camera starts ``(clip_frames - 1) * step_m`` metres *behind* the scene's
origin and ends at it: everything the world places (nothing closer than 3 m to the
origin) stays in front of the camera for the whole clip.

Known approximations of moving the camera without changing the generator: the sensor
grain, cloud blotches and the ego-vehicle bonnet are fixed in the image (they are drawn in
image coordinates); atmospheric haze and a few line widths use the distance from the
scene origin rather than from the moved camera. Each frame gets its own light sensor
noise, so frames are never pixel-identical.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np

from anomaly_seg_ros.datasets.cityscapes import to_train_ids
from anomaly_seg_ros.errors import ConfigError
from training.synthetic.anomalies import road_anomalies
from training.synthetic.camera import Camera
from training.synthetic.scene import Frame, World
from training.synthetic.writers import fishyscapes_label

LOGGER = logging.getLogger(__name__)
#: Random-stream family of drive scenes (the generator uses 1-4 for its datasets).
DRIVE_FAMILY = 5
#: A scene is accepted when anomalies cover at least this fraction of its last frame...
MIN_LAST_FRACTION = 0.005
#: ... and at least this fraction of its first (farthest) frame.
MIN_FIRST_FRACTION = 0.0015
_MAX_ATTEMPTS = 40


@dataclass(frozen=True)
class DriveSpec:
    """What drive to render.

    :param frames: total number of frames (>= 1).
    :param height: image rows (the camera size; the demo uses the model's input size).
    :param width: image columns.
    :param clip_frames: frames per scene; the drive cuts to a new scene after this many.
    :param step_m: metres the camera moves between frames.
    :param fps: frame rate of the header stamps.
    :param seed: seed of the world and of every scene.
    :param start_ns: header stamp of the first frame, nanoseconds.
    """

    frames: int = 120
    height: int = 256
    width: int = 512
    clip_frames: int = 30
    step_m: float = 0.4
    fps: float = 10.0
    seed: int = 7
    start_ns: int = 1_700_000_000_000_000_000

    def validate(self) -> None:
        """:raises ConfigError: a count, size or rate out of range."""
        if self.frames < 1 or self.clip_frames < 1:
            raise ConfigError(f"a drive needs frames >= 1 and clip_frames >= 1, got {self}")
        if self.height < 32 or self.width < 32:
            raise ConfigError(f"drive size {self.height}x{self.width}: use at least 32x32")
        if not (self.fps > 0 and self.step_m >= 0):
            raise ConfigError(f"fps must be > 0 and step_m >= 0, got {self.fps}, {self.step_m}")

    def stamp_ns(self, index: int) -> int:
        """Header stamp of frame ``index``."""
        return self.start_ns + round(index * 1e9 / self.fps)


@dataclass(frozen=True)
class DriveFrame:
    """One frame of the drive.

    :param index: position in the drive.
    :param clip: scene number.
    :param stamp_ns: header stamp, nanoseconds.
    :param image: (H, W, 3) uint8 RGB.
    :param anomaly_label: (H, W) uint8, 0 = in-distribution, 1 = anomaly, 255 = void.
    :param train_ids: (H, W) uint8 Cityscapes train IDs, 255 = void (anomalies too).
    """

    index: int
    clip: int
    stamp_ns: int
    image: np.ndarray
    anomaly_label: np.ndarray
    train_ids: np.ndarray


@dataclass(frozen=True)
class MovingCamera(Camera):
    """The world's camera moved ``ego_z`` metres along the road (negative = backwards)."""

    ego_z: float = 0.0

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shifted = np.array(points, dtype=np.float32)
        shifted[..., 2] -= self.ego_z
        return super().project(shifted)

    def ground_rows(self, first_row: int) -> tuple[np.ndarray, np.ndarray]:
        # The ground is drawn from world distances: report them, so lane dashes, crossings
        # and asphalt grain stay where they are on the road while the camera moves.
        scale, distance = super().ground_rows(first_row)
        return scale, distance + np.float32(self.ego_z)


class DriveWorld(World):
    """The synthetic world whose random camera is placed at :attr:`ego_z`."""

    ego_z = 0.0

    def camera(self, rng: np.random.Generator) -> Camera:
        base = super().camera(rng)
        values = {item.name: getattr(base, item.name) for item in fields(Camera)}
        return MovingCamera(**values, ego_z=self.ego_z)

    def render_at(self, scene: list[int], ego_z: float) -> Frame:
        """Render scene ``scene`` (random-stream key) from camera position ``ego_z``."""
        self.ego_z = ego_z
        return self.render(np.random.default_rng(scene), anomalies=road_anomalies)


def _pick_scene(world: DriveWorld, spec: DriveSpec, clip: int, length: int) -> list[int]:
    """The first scene of ``clip`` whose anomalies are visible from its first and last
    camera positions (else the one with the most anomaly pixels in its last frame)."""
    pixels = spec.height * spec.width
    best: tuple[float, list[int]] | None = None
    for attempt in range(_MAX_ATTEMPTS):
        scene = [spec.seed, DRIVE_FAMILY, clip, attempt]
        last = world.render_at(scene, 0.0).anomaly.mean()
        if best is None or last > best[0]:
            best = (float(last), scene)
        if last < MIN_LAST_FRACTION:
            continue
        first = world.render_at(scene, -(length - 1) * spec.step_m).anomaly.mean()
        if first >= MIN_FIRST_FRACTION:
            return scene
    assert best is not None  # _MAX_ATTEMPTS > 0
    LOGGER.warning(
        "clip %d: no scene with anomalies visible all along; using one with %.0f anomaly "
        "pixels at its end",
        clip,
        best[0] * pixels,
    )
    return best[1]


def render_drive(spec: DriveSpec) -> Iterator[DriveFrame]:
    """Render the drive frame by frame (nothing is kept in memory).

    :raises ConfigError: ``spec`` is out of range.
    """
    spec.validate()
    world = DriveWorld(spec.height, spec.width, spec.seed)
    index = 0
    clip = 0
    while index < spec.frames:
        length = min(spec.clip_frames, spec.frames - index)
        scene = _pick_scene(world, spec, clip, length)
        for position in range(length):
            ego_z = -(length - 1 - position) * spec.step_m
            frame = world.render_at(scene, ego_z)
            noise = np.random.default_rng([*scene, position]).normal(0.0, 1.5, frame.image.shape)
            image = np.clip(frame.image + noise, 0, 255).astype(np.uint8)
            yield DriveFrame(
                index=index,
                clip=clip,
                stamp_ns=spec.stamp_ns(index),
                image=image,
                anomaly_label=fishyscapes_label(frame),
                train_ids=to_train_ids(frame.label_ids),
            )
            index += 1
        clip += 1
