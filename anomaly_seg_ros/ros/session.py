"""Start-up helpers of the ROS executables: rclpy session, QoS profiles."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import rclpy
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.models import PACKAGE

#: Fast DDS profile for camera-sized images (see the comment in the file).
FASTDDS_PROFILE = "fastdds_large_images.xml"
#: Fast DDS 3 (Jazzy on) reads the first, Fast DDS 2 (Humble) the second.
FASTDDS_PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")


def packaged_config(name: str) -> Path | None:
    """A file of the package's ``config/`` folder: source tree first, then the installed
    share directory; None when neither has it."""
    source = Path(__file__).resolve().parents[2] / "config" / name
    if source.is_file():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory(PACKAGE)) / "config" / name
    except (ImportError, LookupError, OSError):
        # no ament_index_python, package not installed, or AMENT_PREFIX_PATH unset
        return None
    return installed if installed.is_file() else None


def use_large_image_transport() -> Path | None:
    """Point Fast DDS at the packaged large-image profile, unless the user chose a profile
    or another RMW; must run before ``rclpy.init``. Returns the profile used, or None.

    Without it a burst of five camera-sized outputs overflows Fast DDS's default 512 KB
    shared-memory segment and each frame waits a 3 s heartbeat for the resend.
    """
    if any(os.environ.get(name) for name in FASTDDS_PROFILE_VARIABLES):
        return None
    if not os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp").startswith("rmw_fastrtps"):
        return None
    profile = packaged_config(FASTDDS_PROFILE)
    if profile is not None:
        os.environ[FASTDDS_PROFILE_VARIABLES[0]] = str(profile)
        if os.environ.get("ROS_DISTRO") in ("humble", "iron"):  # Fast DDS 2 reads this one
            os.environ[FASTDDS_PROFILE_VARIABLES[1]] = str(profile)
    return profile


@contextmanager
def ros_session(args: Sequence[str] | None = None) -> Iterator[None]:
    """``rclpy.init`` ... ``rclpy.shutdown``, on every ROS 2 release, with the large-image
    Fast DDS profile (:func:`use_large_image_transport`).

    Newer rclpy returns a context manager from ``init`` (``with rclpy.init():``); Humble's
    returns None, so shut down explicitly there.
    """
    use_large_image_transport()
    initialised = rclpy.init(args=args)
    if hasattr(initialised, "__enter__"):
        with initialised:
            yield
        return
    try:
        yield
    finally:
        rclpy.try_shutdown()


def input_qos(profile: str, depth: int) -> QoSProfile:
    """The camera subscription's QoS: ``sensor_data`` (best effort) or ``reliable``.

    :raises ConfigError: unknown profile name.
    """
    if profile == "sensor_data":
        qos = QoSProfile(
            history=qos_profile_sensor_data.history,
            depth=depth,
            reliability=qos_profile_sensor_data.reliability,
            durability=qos_profile_sensor_data.durability,
        )
        return qos
    if profile == "reliable":
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=depth,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        )
    raise ConfigError(f"qos_profile {profile!r} unknown; valid: sensor_data, reliable")


def output_qos(depth: int = 1) -> QoSProfile:
    """Result publishers: reliable, so both reliable (RViz default) and best-effort
    subscribers match; keep-last ``depth`` so a slow subscriber never blocks the node."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )
