"""Start-up helpers of the ROS executables: rclpy session, QoS profiles, model lookup."""

from __future__ import annotations

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

from anomaly_seg_ros.errors import ConfigError, ModelError
from anomaly_seg_ros.models import default_model_path


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
    """The model to load: ``configured``, or else the bundled demo model (looked up in
    the source tree, then in the installed package share; see :mod:`anomaly_seg_ros.models`).

    :raises ModelError: ``configured`` does not exist, or no demo model is found.
    """
    path = Path(configured).expanduser() if configured else default_model_path()
    if path.is_file():
        return path
    if configured:
        raise ModelError(
            f"model_path {path} does not exist; pass an exported model "
            "(`anomaly-seg export`) with -p model_path:=/path/to/model.onnx"
        )
    raise ModelError(
        f"no model_path given and the bundled demo model {path} is missing; "
        "set -p model_path:=/path/to/model.onnx"
    )
