"""Entry points of the node executables (``detector_node``, ``detector_lifecycle_node``).

Importing the node takes about a second (rclpy, the message packages, numpy, OpenCV). A
stop signal in that second used to end the process with a KeyboardInterrupt traceback
(SIGINT) or kill it outright, and one that landed inside a compiled module's import
(onnxruntime's) came back as an ImportError: "backend 'onnxruntime' is not available",
exit 1. Here the stop signals are caught from the first moment: a signal during the
imports ends the process with one line and exit 0, like a signal at any later time
(:class:`~anomaly_seg_ros.ros.session.StopSignals` takes over once the node module runs).
This module imports nothing heavy, so that the allocator is set up
(:func:`~anomaly_seg_ros.ros.allocator.keep_freed_memory`) before numpy, OpenCV, ONNX Runtime
and rclpy start their threads on import.
"""

from __future__ import annotations

import importlib
import signal
import sys
from collections.abc import Callable
from types import FrameType

from anomaly_seg_ros.ros.allocator import keep_freed_memory

#: The signals that stop the node (the same as StopSignals').
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StartupSignals:
    """Remembers the stop signals that arrive while the node's modules are imported; the
    first one also interrupts the import (KeyboardInterrupt), later ones are ignored."""

    def __init__(self) -> None:
        self.received: list[str] = []

    def handle(self, number: int, _frame: FrameType | None) -> None:
        self.received.append(signal.Signals(number).name)
        if len(self.received) == 1:
            raise KeyboardInterrupt

    def install(self) -> None:
        for number in STOP_SIGNALS:
            signal.signal(number, self.handle)


def start(module: str, args: list[str] | None = None) -> int:
    """Import ``module`` and run its ``main(args)``, ending quietly (exit 0) when a stop
    signal arrives before ``main`` has installed its own handlers.

    :param module: the node module (its ``main`` returns the exit code).
    :param args: command line; None = ``sys.argv``.
    :return: the exit code.
    """
    startup = StartupSignals()
    startup.install()
    keep_freed_memory()  # before the imports start threads (see the module docstring)
    try:
        node_module = importlib.import_module(module)
    except BaseException:  # an interrupted import may surface as another error
        if not startup.received:
            raise
    try:
        if not startup.received:
            main: Callable[[list[str] | None], int] = node_module.main
            return main(args)
    except KeyboardInterrupt:  # in the moment before main installs its own handlers
        pass
    print(f"{startup.received[0]} during start-up, exiting", file=sys.stderr)
    return 0


def detector_node() -> int:
    """``detector_node``."""
    return start("anomaly_seg_ros.ros.node")


def detector_lifecycle_node() -> int:
    """``detector_lifecycle_node``."""
    return start("anomaly_seg_ros.ros.lifecycle_node")
