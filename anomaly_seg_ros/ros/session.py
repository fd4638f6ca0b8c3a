"""Start-up helpers of the ROS executables: rclpy session, QoS profiles, model lookup."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import rclpy
from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

from anomaly_seg_ros.errors import ConfigError, ModelError

PACKAGE = "anomaly_seg_ros"
#: The bundled demo model, relative to the package share (installed) or the source tree.
DEMO_MODEL = Path("models", "demo", "demo.onnx")
SOURCE_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def ros_session(args: Sequence[str] | None = None) -> Iterator[None]:
    """``rclpy.init`` ... ``rclpy.shutdown``, on every ROS 2 release.

    Newer rclpy returns a context manager from ``init`` (``with rclpy.init():``); Humble's
    returns None, so shut down explicitly there.
    """
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


def resolve_model_path(configured: str) -> Path:
    """The model to load: ``configured``, or else the bundled demo model.

    The demo model is looked up in the installed package share (ament index), then in
    the source tree (running from a checkout).

    :raises ModelError: ``configured`` does not exist, or no demo model is found.
    """
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ModelError(
                f"model_path {path} does not exist; pass an exported model "
                "(`anomaly-seg export`) with -p model_path:=/path/to/model.onnx"
            )
        return path
    candidates = []
    try:
        candidates.append(Path(get_package_share_directory(PACKAGE)) / DEMO_MODEL)
    except PackageNotFoundError:
        pass  # not installed: running from the source tree
    candidates.append(SOURCE_ROOT / DEMO_MODEL)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ModelError(
        "no model_path given and the bundled demo model is missing (looked in "
        f"{', '.join(str(c) for c in candidates)}); set -p model_path:=/path/to/model.onnx"
    )
