"""A short synthetic drive: the camera moves forward through a few scenes of the synthetic
world, towards anomalies lying on the road, with pixel-exact ground truth.

The world (``demo/synthetic``) renders one frame from a random generator; the same
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
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields

import numpy as np

from anomaly_seg_ros.datasets.cityscapes import to_train_ids
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.evaluation.object_truth import TruthObstacle
from anomaly_seg_ros.objects.camera import CameraModel, CameraMount, pinhole
from demo.synthetic.anomalies import Obstacle, road_anomalies
from demo.synthetic.camera import NEAR_PLANE, Camera
from demo.synthetic.scene import Frame, World
from demo.synthetic.writers import fishyscapes_label

LOGGER = logging.getLogger(__name__)
#: Random-stream family of drive scenes (the generator uses 1-4 for its datasets).
DRIVE_FAMILY = 5
#: A scene is accepted when anomalies cover at least this fraction of its last frame...
MIN_LAST_FRACTION = 0.005
#: ... and at least this fraction of its first (farthest) frame.
MIN_FIRST_FRACTION = 0.0015
_MAX_ATTEMPTS = 40
#: The drive's one camera, the middle of the world's random cameras
#: (``demo.synthetic.scene.World.camera``): focal length 0.9–1.25 × the image width,
#: 1.1–1.9 m high, pitched −1°…4° down, principal point −4…6 % of the height below centre.
DRIVE_FOCAL_PER_WIDTH = 1.075
DRIVE_CAMERA_HEIGHT_M = 1.5
DRIVE_PITCH_DEG = 1.5
DRIVE_CY_OFFSET_PER_HEIGHT = 0.01


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
    :param obstacles: ground truth of the scene's test anomalies in the vehicle frame.
    """

    index: int
    clip: int
    stamp_ns: int
    image: np.ndarray
    anomaly_label: np.ndarray
    train_ids: np.ndarray
    obstacles: tuple[TruthObstacle, ...] = ()


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
    """The synthetic world seen by one camera (a car has one), placed at :attr:`ego_z`.

    Every scene still draws its own random camera (so its content stays what the scene's
    random stream makes), but renders with the drive's camera, the world's typical one
    (``DRIVE_*`` constants): its mount and intrinsics are the drive's.
    """

    ego_z = 0.0

    def __init__(self, height: int = 256, width: int = 512, seed: int = 0) -> None:
        super().__init__(height, width, seed)
        self.drive_camera = Camera(
            height,
            width,
            focal=width * DRIVE_FOCAL_PER_WIDTH,
            height=DRIVE_CAMERA_HEIGHT_M,
            pitch=math.radians(DRIVE_PITCH_DEG),
            cy_offset=height * DRIVE_CY_OFFSET_PER_HEIGHT,
        )

    def camera(self, rng: np.random.Generator) -> Camera:
        super().camera(rng)  # the scene's own draws, so that the rest of it is unchanged
        values = {item.name: getattr(self.drive_camera, item.name) for item in fields(Camera)}
        return MovingCamera(**values, ego_z=self.ego_z)

    def render_at(self, scene: list[int], ego_z: float) -> Frame:
        """Render scene ``scene`` (random-stream key) from camera position ``ego_z``."""
        self.ego_z = ego_z
        return self.render(np.random.default_rng(scene), anomalies=road_anomalies)


def camera_mount(camera: Camera) -> CameraMount:
    """The synthetic camera's mount: ``base_link`` on the ground right under it."""
    return CameraMount(0.0, 0.0, float(camera.height), 0.0, float(camera.pitch), 0.0)


def camera_model(camera: Camera) -> CameraModel:
    """The synthetic camera's intrinsics (a pinhole: no distortion)."""
    return pinhole(camera.focal, camera.cx, camera.cy, camera.image_width, camera.image_height)


def drive_camera(spec: DriveSpec) -> Camera:
    """The one camera of ``spec``'s drive (at the scene origin)."""
    return DriveWorld(spec.height, spec.width, spec.seed).drive_camera


def drive_description(spec: DriveSpec) -> dict[str, object]:
    """The drive's description: spec, camera mount and intrinsics (JSON values)."""
    camera = drive_camera(spec)
    model = camera_model(camera)
    return {
        "spec": {item.name: getattr(spec, item.name) for item in fields(DriveSpec)},
        "mount": {**asdict(camera_mount(camera))},
        "camera": {
            "k": model.k.reshape(-1).tolist(),
            "d": list(model.d),
            "distortion_model": model.distortion_model,
            "width": model.width,
            "height": model.height,
        },
    }


def truth_obstacles(
    obstacles: tuple[Obstacle, ...], camera: Camera, anomaly: np.ndarray, scene: int
) -> tuple[TruthObstacle, ...]:
    """The world's obstacles in the vehicle frame of a camera at ``camera.ego_z``.

    ``visible_px`` counts anomaly pixels inside the box of the projected 3D box (0 when
    the box is behind the camera or outside the image).
    """
    ego_z = float(getattr(camera, "ego_z", 0.0))
    truths = []
    height, width = anomaly.shape
    for index, item in enumerate(obstacles):
        xs = (item.x_min, item.x_max)
        corners = np.array(
            [[x, y, z] for x in xs for y in (0.0, item.height) for z in (item.z_min, item.z_max)],
            np.float32,
        )
        uv, depth = camera.project(corners)
        visible = 0
        if np.all(depth >= NEAR_PLANE):
            u0, v0 = np.floor(uv.min(axis=0)).astype(int)
            u1, v1 = np.ceil(uv.max(axis=0)).astype(int)
            u0, v0, u1, v1 = max(u0, 0), max(v0, 0), min(u1, width - 1), min(v1, height - 1)
            if u0 <= u1 and v0 <= v1:
                visible = int(np.count_nonzero(anomaly[v0 : v1 + 1, u0 : u1 + 1]))
        truths.append(
            TruthObstacle(
                index=index,
                scene=scene,
                kind=item.kind,
                forward_m=float(item.z_min - ego_z),
                left_m=float(-0.5 * (item.x_min + item.x_max)),
                forward_far_m=float(item.z_max - ego_z),
                left_min_m=float(-item.x_max),
                left_max_m=float(-item.x_min),
                height_m=float(item.height),
                visible_px=visible,
            )
        )
    return tuple(truths)


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
                obstacles=truth_obstacles(
                    frame.obstacles, frame.camera or world.drive_camera, frame.anomaly, clip
                ),
            )
            index += 1
        clip += 1
