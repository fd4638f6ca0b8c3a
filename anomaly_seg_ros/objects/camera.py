"""The camera of the object layer: intrinsics (``sensor_msgs/CameraInfo``) and mounting.

Frames:

* **optical** (REP 103 ``_optical`` suffix, OpenCV): x right, y down, z forward;
* **camera body**: x forward, y left, z up, at the same origin;
* **vehicle** (REP 103/105 ``base_link``): x forward, y left, z up, on the ground plane
  ``z = 0`` under the vehicle. :class:`CameraMount` is the camera body's pose in it.

A car's static transform ``base_link → camera_link`` (``ros2 run tf2_ros
static_transform_publisher --x X --y Y --z Z --roll R --pitch P --yaw W ...``) is exactly
the mount's ``x y z roll pitch yaw`` when ``camera_link`` is the body frame (x forward);
the optical frame is a fixed rotation of it (handled here).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anomaly_seg_ros.errors import InputError

#: A synthetic drive's description inside its bag folder (the camera's mount and
#: intrinsics; rosbag2 readers ignore extra files).
DESCRIPTION_FILE = "description.json"
#: Distortion models of ``sensor_msgs/CameraInfo`` this layer undistorts ("" = none).
DISTORTION_MODELS = ("", "plumb_bob", "rational_polynomial", "equidistant")
#: The optical axis may point at most this far above the horizontal (radians).
MAX_UPWARD_AXIS = math.radians(45.0)

#: Undistortion iterations: until a step moves less than 1e-10 (normalised units).
UNDISTORT_CRITERIA = (3, 50, 1e-10)  # cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS
#: Optical (x right, y down, z forward) → body (x forward, y left, z up).
OPTICAL_TO_BODY = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


class CameraInfoError(ValueError):
    """A CameraInfo that cannot give positions (zeros, NaN, unknown model); the message
    names the field."""


@dataclass(frozen=True)
class CameraModel:
    """Intrinsics of the camera the masks are at.

    :param k: (3, 3) float64 camera matrix.
    :param d: distortion coefficients of ``distortion_model``.
    :param distortion_model: one of :data:`DISTORTION_MODELS`.
    :param width: image columns the intrinsics are for.
    :param height: image rows.
    """

    k: np.ndarray
    d: tuple[float, ...]
    distortion_model: str
    width: int
    height: int

    @property
    def focal_y(self) -> float:
        return float(self.k[1, 1])

    @property
    def distorted(self) -> bool:
        """Whether the coefficients change anything (all zeros = a pinhole)."""
        return any(value != 0.0 for value in self.d)


def camera_model_from_info(
    k: object, d: object, width: int, height: int, distortion_model: str
) -> CameraModel:
    """A validated :class:`CameraModel` from CameraInfo fields.

    :param k: the 9 values of ``CameraInfo.k`` (row-major 3×3).
    :param d: ``CameraInfo.d``.
    :raises CameraInfoError: zero or non-finite values, a non-positive focal length or
        size, a principal point outside the image, an unknown model or the wrong number of
        coefficients for it.
    """
    values = np.asarray(k, dtype=np.float64).reshape(-1)
    if values.size != 9:
        raise CameraInfoError(f"CameraInfo k has {values.size} values, expected 9")
    matrix = values.reshape(3, 3)
    coefficients = tuple(float(v) for v in np.asarray(d, dtype=np.float64).reshape(-1))
    if not np.all(np.isfinite(matrix)) or not all(math.isfinite(v) for v in coefficients):
        raise CameraInfoError("CameraInfo k or d holds NaN or infinity")
    if not (int(width) > 0 and int(height) > 0):
        raise CameraInfoError(f"CameraInfo size {width}x{height} is not positive")
    fx, fy, cx, cy = matrix[0, 0], matrix[1, 1], matrix[0, 2], matrix[1, 2]
    if not (fx > 0 and fy > 0):
        raise CameraInfoError(f"CameraInfo focal length fx={fx}, fy={fy} is not positive")
    if not (0 <= cx < width and 0 <= cy < height):
        raise CameraInfoError(
            f"CameraInfo principal point ({cx}, {cy}) lies outside the {width}x{height} image"
        )
    if matrix[2, 2] != 1.0 or matrix[1, 0] != 0.0 or matrix[2, 0] != 0.0 or matrix[2, 1] != 0.0:
        raise CameraInfoError(f"CameraInfo k is not a camera matrix: {matrix.tolist()}")
    if distortion_model not in DISTORTION_MODELS:
        raise CameraInfoError(
            f"CameraInfo distortion_model {distortion_model!r} is not supported; "
            f"valid: {', '.join(repr(m) for m in DISTORTION_MODELS)}"
        )
    counts = {"plumb_bob": (5,), "rational_polynomial": (8, 14), "equidistant": (4,)}
    allowed = counts.get(distortion_model, (0,))
    if distortion_model == "" and any(coefficients):
        raise CameraInfoError("CameraInfo d has coefficients but no distortion_model")
    if distortion_model and len(coefficients) not in allowed:
        raise CameraInfoError(
            f"CameraInfo {distortion_model} needs {' or '.join(map(str, allowed))} "
            f"coefficients in d, got {len(coefficients)}"
        )
    return CameraModel(matrix, coefficients, distortion_model, int(width), int(height))


def camera_model_from_message(info: Any) -> CameraModel:
    """A validated :class:`CameraModel` of a ``sensor_msgs/CameraInfo`` message (rclpy or
    rosbags).

    :raises CameraInfoError: see :func:`camera_model_from_info`.
    """
    return camera_model_from_info(
        info.k, info.d, int(info.width), int(info.height), str(info.distortion_model)
    )


def camera_info_key(info: Any) -> tuple[Any, ...]:
    """What identifies one calibration in a ``sensor_msgs/CameraInfo``: equal keys, equal
    camera models (cameras send the same message with every frame)."""
    return (
        tuple(float(v) for v in info.k),
        tuple(float(v) for v in info.d),
        int(info.width),
        int(info.height),
        str(info.distortion_model),
    )


def pinhole(focal: float, cx: float, cy: float, width: int, height: int) -> CameraModel:
    """An undistorted camera with square pixels (tests, the synthetic world)."""
    k = [focal, 0.0, cx, 0.0, focal, cy, 0.0, 0.0, 1.0]
    return camera_model_from_info(k, (), width, height, "")


def load_camera_info(path: str | Path) -> CameraModel:
    """Intrinsics from a file: a ROS calibration YAML (``camera_calibration_parsers``:
    ``image_width``, ``image_height``, ``camera_matrix.data``, ``distortion_model``,
    ``distortion_coefficients.data``) or a drive's ``description.json`` (its ``camera``).

    :raises ConfigError: unreadable, or missing fields.
    :raises CameraInfoError: the values cannot give positions.
    """
    from anomaly_seg_ros.config_files import read_yaml_mapping
    from anomaly_seg_ros.errors import ConfigError

    document = read_yaml_mapping(path, "camera calibration")  # JSON is YAML too
    try:
        if "camera" in document:
            camera = document["camera"]
            return camera_model_from_info(
                camera["k"],
                camera["d"],
                camera["width"],
                camera["height"],
                camera["distortion_model"],
            )
        return camera_model_from_info(
            document["camera_matrix"]["data"],
            document.get("distortion_coefficients", {}).get("data", []),
            document["image_width"],
            document["image_height"],
            document.get("distortion_model", ""),
        )
    except (KeyError, TypeError) as error:
        raise ConfigError(f"{path}: not a camera calibration (missing {error})") from error


def camera_size_problem(camera: CameraModel, width: int, height: int) -> str | None:
    """Why ``camera`` does not describe an image of ``width`` × ``height``, or None."""
    if (camera.width, camera.height) != (width, height):
        return (
            f"CameraInfo is for {camera.width}x{camera.height} but the masks are "
            f"{width}x{height}: objects get no position until they match"
        )
    return None


def undistorted_rays(camera: CameraModel, pixels: np.ndarray) -> np.ndarray:
    """Normalised optical-frame directions ``(x/z, y/z)`` of pixel coordinates.

    :param pixels: (N, 2) float (column, row); pixel centres at integers (OpenCV, ROS).
    :return: (N, 2) float64; ``cv2.undistortPoints`` (``cv2.fisheye`` for equidistant).
    """
    points = np.asarray(pixels, np.float64).reshape(-1, 1, 2)
    if len(points) == 0:
        return np.zeros((0, 2))
    if not camera.distorted:
        fx, fy = camera.k[0, 0], camera.k[1, 1]
        cx, cy, skew = camera.k[0, 2], camera.k[1, 2], camera.k[0, 1]
        y = (points[:, 0, 1] - cy) / fy
        x = (points[:, 0, 0] - cx - skew * y) / fx
        return np.stack([x, y], axis=1)
    import cv2

    coefficients = np.asarray(camera.d, np.float64)
    if camera.distortion_model == "equidistant":
        normalised = cv2.fisheye.undistortPoints(
            points, camera.k, coefficients, criteria=UNDISTORT_CRITERIA
        )
    else:
        # Plain undistortPoints stops after 5 steps (centimetres off at a strong lens's
        # edge): OpenCV 4 iterates further in undistortPointsIter, OpenCV 5 takes criteria.
        iterate = getattr(cv2, "undistortPointsIter", None)
        if iterate is not None:
            normalised = iterate(points, camera.k, coefficients, None, None, UNDISTORT_CRITERIA)
        else:
            normalised = cv2.undistortPoints(
                points, camera.k, coefficients, criteria=UNDISTORT_CRITERIA
            )
    return np.asarray(normalised, np.float64).reshape(-1, 2)


@dataclass(frozen=True)
class CameraMount:
    """The camera body frame's pose in the vehicle frame (metres, radians; REP 103).

    Rotation order as tf2 / URDF: ``R = Rz(yaw) · Ry(pitch) · Rx(roll)``; a positive
    ``pitch`` looks down.
    """

    x: float
    y: float
    z: float
    roll: float
    pitch: float
    yaw: float
    vehicle_frame: str = "base_link"

    def rotation(self) -> np.ndarray:
        """(3, 3) float64: camera body → vehicle."""
        cr, sr = math.cos(self.roll), math.sin(self.roll)
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        cw, sw = math.cos(self.yaw), math.sin(self.yaw)
        rz = np.array([[cw, -sw, 0.0], [sw, cw, 0.0], [0.0, 0.0, 1.0]])
        ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
        rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
        rotation: np.ndarray = rz @ ry @ rx
        return rotation

    def optical_rotation(self) -> np.ndarray:
        """(3, 3) float64: optical frame → vehicle."""
        rotation: np.ndarray = self.rotation() @ OPTICAL_TO_BODY
        return rotation

    @property
    def origin(self) -> np.ndarray:
        return np.array([self.x, self.y, self.z])


def mount_problem(mount: CameraMount) -> str | None:
    """Why ``mount`` cannot put objects on the ground, or None.

    Problems: a value that is not finite, an empty frame name, the camera at or below the
    ground, the optical axis more than :data:`MAX_UPWARD_AXIS` above the horizontal.
    """
    values = (mount.x, mount.y, mount.z, mount.roll, mount.pitch, mount.yaw)
    if not all(math.isfinite(v) for v in values):
        return f"camera mount {values} holds NaN or infinity: objects get no position"
    if not mount.vehicle_frame:
        return "camera mount has an empty vehicle frame name"
    if mount.z <= 0.0:
        return (
            f"camera mount z = {mount.z} m puts the camera at or below the ground: "
            "objects get no position"
        )
    axis = mount.rotation()[:, 0]  # the body x axis = the optical axis
    if math.asin(max(-1.0, min(1.0, axis[2]))) > MAX_UPWARD_AXIS:
        return (
            "camera mount looks at the sky (optical axis "
            f"{math.degrees(math.asin(axis[2])):.0f}° above the horizontal): "
            "objects get no position"
        )
    return None


def read_description(bag: str | Path) -> dict[str, Any] | None:
    """A drive bag's description, or None when the bag has none."""
    path = Path(bag) / DESCRIPTION_FILE
    if not path.is_file():
        return None
    try:
        document: dict[str, Any] = json.loads(path.read_text())
    except ValueError as error:
        raise InputError(f"{path}: not valid JSON ({error})") from error
    return document


def mount_of(description: dict[str, Any]) -> CameraMount:
    """The :class:`CameraMount` in a description.

    :raises InputError: it has no valid ``mount``.
    """
    try:
        values = description["mount"]
        return CameraMount(
            float(values["x"]),
            float(values["y"]),
            float(values["z"]),
            float(values["roll"]),
            float(values["pitch"]),
            float(values["yaw"]),
            str(values.get("vehicle_frame", "base_link")),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(f"drive description has no valid camera mount: {error}") from error
