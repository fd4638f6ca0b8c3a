"""The real ``detector_node`` as a subprocess, isolated in its own ROS domain.

No rclpy here: the node is another process, started with the same command line a user
types (``detector_node --ros-args ...``), its output written to a log file.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from anomaly_seg_ros.errors import BackendError
from anomaly_seg_ros.io.object_messages import camera_info_topic

LOGGER = logging.getLogger(__name__)
#: Domain IDs that are safe on every OS with the default DDS port mapping.
DOMAIN_RANGE = (1, 101)
_SOURCE_ROOT = Path(__file__).resolve().parents[1]


def fresh_domain_id() -> int:
    """A random ROS domain ID other than the environment's, so that the demo neither
    hears nor disturbs other ROS programs on this machine."""
    current = os.environ.get("ROS_DOMAIN_ID", "0")
    choices = [d for d in range(DOMAIN_RANGE[0], DOMAIN_RANGE[1] + 1) if str(d) != current]
    return random.SystemRandom().choice(choices)


def detector_command() -> list[str]:
    """``detector_node`` of this Python environment, else ``python -m`` on the sources."""
    executable = shutil.which("detector_node", path=str(Path(sys.executable).parent))
    if executable:
        return [executable]
    return [sys.executable, "-m", "anomaly_seg_ros.ros.node"]


@dataclass(frozen=True)
class NodeLaunch:
    """How to start the node.

    :param model: model file (``model_path``).
    :param camera_topic: remapped onto the node's ``image`` input.
    :param domain_id: ``ROS_DOMAIN_ID`` of the node.
    :param log_path: where the node's stdout and stderr go.
    :param params_file: optional ``--params-file`` (node parameters YAML).
    :param parameters: ``-p name:=value`` overrides, applied after the file.
    """

    model: Path
    camera_topic: str
    domain_id: int
    log_path: Path
    params_file: Path | None = None
    parameters: dict[str, object] = field(default_factory=dict)

    def arguments(self) -> list[str]:
        """The full command line."""
        arguments = [*detector_command(), "--ros-args", "-r", f"image:={self.camera_topic}"]
        arguments += ["-r", f"camera_info:={camera_info_topic(self.camera_topic)}"]
        if self.params_file is not None:
            arguments += ["--params-file", str(self.params_file)]
        values = {"model_path": str(self.model), **self.parameters}
        for name, value in values.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            arguments += ["-p", f"{name}:={text}"]
        return arguments

    def environment(self) -> dict[str, str]:
        """This process's environment with the demo's ROS isolation."""
        environment = dict(os.environ)
        environment["ROS_DOMAIN_ID"] = str(self.domain_id)
        environment["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        environment["PYTHONUNBUFFERED"] = "1"
        if (_SOURCE_ROOT / "anomaly_seg_ros").is_dir():  # a checkout: importable as is
            paths = [str(_SOURCE_ROOT), environment.get("PYTHONPATH", "")]
            environment["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        return environment


class DetectorNodeProcess:
    """A running node; use as a context manager (stopped with SIGINT on exit)."""

    def __init__(self, launch: NodeLaunch) -> None:
        self.launch = launch
        self.exit_code: int | None = None
        self._log: IO[str] | None = None
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> DetectorNodeProcess:
        self.launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.launch.log_path, "w")  # closed in stop()
        arguments = self.launch.arguments()
        self._log.write("$ " + " ".join(arguments) + "\n")
        self._log.flush()
        LOGGER.info("starting %s", " ".join(arguments))
        try:
            self._process = subprocess.Popen(
                arguments,
                env=self.launch.environment(),
                stdout=self._log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        except OSError as error:
            self._log.close()
            raise BackendError(f"cannot start the detector node ({error})") from error
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGINT (a clean ROS shutdown), then SIGKILL after ``timeout``; the exit code."""
        if self._process is not None and self.exit_code is None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGINT)
            try:
                self.exit_code = self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                LOGGER.warning("detector node ignored SIGINT for %.0f s; killing it", timeout)
                self._process.kill()
                self.exit_code = self._process.wait()
        if self._log is not None and not self._log.closed:
            self._log.close()
        return self.exit_code

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the node's log (for error messages)."""
        text = self.launch.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])
