"""Start-up helpers of the ROS executables: rclpy session, signals, QoS profiles."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import rclpy
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rclpy.signals import SignalHandlerOptions

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.model.bundled import PACKAGE

#: Fast DDS profile for camera-sized images (see the comment in the file).
FASTDDS_PROFILE = "fastdds_large_images.xml"
#: Fast DDS 3 (Jazzy on) reads the first, Fast DDS 2 (Humble) the second.
FASTDDS_PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
#: Set (to 1) by ``launch/detector.launch.py`` for the node it starts: the node stops when
#: the process that started it ends. ``ros2 launch`` on SIGTERM cancels its own run without
#: signalling the processes it launched (upstream launch: "using SIGTERM can result in
#: orphaned processes"), which left the node running.
STOP_WITH_PARENT_VARIABLE = "ANOMALY_SEG_STOP_WITH_PARENT"


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
def ros_session(
    args: Sequence[str] | None = None, rclpy_signal_handlers: bool = True
) -> Iterator[None]:
    """``rclpy.init`` ... ``rclpy.shutdown``, on every ROS 2 release, with the large-image
    Fast DDS profile (:func:`use_large_image_transport`).

    Newer rclpy returns a context manager from ``init`` (``with rclpy.init():``); Humble's
    returns None, so shut down explicitly there.

    :param args: command line (``--ros-args ...``).
    :param rclpy_signal_handlers: False when the caller handles SIGINT/SIGTERM itself
        (:class:`StopSignals`): rclpy's handlers shut the context down at once, while
        callbacks and the inference thread may still publish.
    """
    use_large_image_transport()
    options = SignalHandlerOptions.ALL if rclpy_signal_handlers else SignalHandlerOptions.NO
    initialised = rclpy.init(
        args=None if args is None else list(args), signal_handler_options=options
    )
    if hasattr(initialised, "__enter__"):
        with initialised:
            yield
        return
    try:
        yield
    finally:
        rclpy.try_shutdown()


def params_files(argv: Sequence[str]) -> list[str]:
    """The ``--params-file`` paths of a ``--ros-args`` command line."""
    files, in_ros_args = [], False
    for position, word in enumerate(argv):
        if word == "--ros-args":
            in_ros_args = True
        elif word == "--":
            in_ros_args = False
        elif in_ros_args and word == "--params-file" and position + 1 < len(argv):
            files.append(argv[position + 1])
    return files


def check_params_files(argv: Sequence[str]) -> None:
    """Refuse a missing or malformed ``--params-file`` with one line naming it.

    rcl reports these as a traceback (missing, bad YAML) or not at all (a YAML that is
    not ``<node>: {ros__parameters: {...}}``, whose values are then silently ignored).

    :raises ConfigError: naming the file and what is wrong with it.
    """
    from anomaly_seg_ros.config_files import read_yaml

    for path in params_files(argv):
        document = read_yaml(path, "--params-file")
        sections = document.values() if isinstance(document, dict) else None
        if not sections or not all(
            isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict)
            for section in sections
        ):
            raise ConfigError(
                f"--params-file {path}: not a ROS 2 parameters file; expected "
                "'/**:' (or the node name) with 'ros__parameters:' and name: value pairs "
                "below, like config/detector.yaml"
            )


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP as one request to stop, however often they arrive.

    A terminal's Ctrl-C reaches every process of the group and ``ros2 launch`` forwards
    another one, so a node sees two signals in quick succession. rclpy's own handlers
    shut the context down and raise KeyboardInterrupt in whatever the main thread is
    doing, which aborted the clean-up half-way. Here the first signal only sets a flag
    that the spin loop polls (:attr:`requested`); later ones are ignored. Until
    :meth:`arm` is called (model loading, which may build a TensorRT engine for minutes)
    the first signal raises KeyboardInterrupt instead, so start-up can still be aborted.

    With :data:`STOP_WITH_PARENT_VARIABLE` set in the environment (the package's launch file
    sets it), the end of the process that started this one counts as a stop request too
    (noticed when :attr:`requested` is polled: the spin loop does every 0.1 s).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    #: What :attr:`received` records when the parent process has ended.
    PARENT_ENDED = "end of the parent process"

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._armed = False
        self.received: list[str] = []
        self._previous: dict[int, object] = {}
        watch = os.environ.get(STOP_WITH_PARENT_VARIABLE, "") not in ("", "0")
        self._parent = os.getppid() if watch else None

    @property
    def requested(self) -> bool:
        """True once a stop signal arrived (or the watched parent process ended)."""
        if self._parent is not None and not self._requested.is_set():
            if os.getppid() != self._parent:  # re-parented: the launching process is gone
                self.received.append(self.PARENT_ENDED)
                self._requested.set()
        return self._requested.is_set()

    def arm(self) -> None:
        """From now on a signal only requests the stop (the node is up and spinning)."""
        self._armed = True

    def _handle(self, number: int, _frame: FrameType | None) -> None:
        self.received.append(signal.Signals(number).name)
        if self._requested.is_set():
            return  # a repeated signal: the stop is already under way
        self._requested.set()
        if not self._armed:
            raise KeyboardInterrupt

    def __enter__(self) -> StopSignals:
        for number in self.SIGNALS:
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        # After a stop request the process is ending: a late second signal (launch's
        # forwarded copy) must not kill it with -2/-15 during interpreter teardown.
        for number, previous in self._previous.items():
            signal.signal(number, signal.SIG_IGN if self.requested else previous)  # type: ignore[arg-type]


def input_qos(profile: str, depth: int) -> QoSProfile:
    """The camera subscription's QoS: ``sensor_data`` (best effort) or ``reliable``
    (``auto`` is the node's choice between them: :func:`matching_profile`).

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


def matching_profile(publishers: Sequence[ReliabilityPolicy]) -> str | None:
    """What ``qos_profile: auto`` subscribes with, given the reliability of the topic's
    publishers: ``reliable`` when there are some and all are reliable (the default of usb_cam,
    v4l2_camera, realsense2_camera, zed_wrapper and Isaac ROS Argus: a best-effort reader
    loses fragments of their large frames), ``sensor_data`` when any is best effort (a
    reliable reader would not match it), None when there are none yet.
    """
    if not publishers:
        return None
    if all(reliability == ReliabilityPolicy.RELIABLE for reliability in publishers):
        return "reliable"
    return "sensor_data"


def output_qos(depth: int = 1) -> QoSProfile:
    """Result publishers: reliable, so both reliable (RViz default) and best-effort
    subscribers match; keep-last ``depth`` so a slow subscriber never blocks the node."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )
