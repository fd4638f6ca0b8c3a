"""The managed (lifecycle) detector node, for Nav2/Autoware-style bring-up.

``detector_lifecycle_node`` starts *unconfigured*: parameters declared (``ros2 param set``
works), nothing loaded. ``ros2 lifecycle set /anomaly_seg_detector <transition>`` then:

* ``configure``  — load the model (for TensorRT: build or read the cached engine) and
  create the output publishers; a missing model fails the transition, naming the file;
* ``activate``   — subscribe to the camera, start inference and ``/diagnostics`` (while
  configured but inactive, ``/diagnostics`` reports WARN "inactive");
* ``deactivate`` — unsubscribe; the frame in flight is finished and published;
* ``cleanup``    — free the model and the publishers (back to unconfigured);
* ``shutdown``   — from any state: all of the above, then the process exits 0.

A second executable rather than a parameter of ``detector_node``: the class differs
(``LifecycleNode``) and a lifecycle manager expects a managed node from its first moment,
before any parameter could be read; the plain node keeps starting with one command.
Topics, parameters and behaviour per frame are those of ``detector_node``.
"""

from __future__ import annotations

import sys
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from anomaly_seg_ros.config import NODE_NAME
from anomaly_seg_ros.errors import AnomalySegError
from anomaly_seg_ros.ros.diagnostics import diagnostic_array, inactive_status
from anomaly_seg_ros.ros.node import DetectorParts, run_detector, spin_until_stopped
from anomaly_seg_ros.ros.session import StopSignals


class DetectorLifecycleNode(DetectorParts, LifecycleNode):
    """The detector as a managed node (see the module docstring for the transitions)."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__(NODE_NAME, start_parameter_services=False, **node_options)
        self._declare()
        self.shut_down = False
        self._inactive_timer: Any = None

    def _report_inactive(self, on: bool) -> None:
        """While configured but not active, /diagnostics says so (the active node's
        timer takes over on activate)."""
        if self._inactive_timer is not None:
            self.destroy_timer(self._inactive_timer)
            self._inactive_timer = None
        if on:
            self._inactive_timer = self.create_timer(
                self.settings.diagnostics_period, self._publish_inactive
            )

    def _publish_inactive(self) -> None:
        if self.description is None or self._diagnostics is None:
            return
        status = inactive_status(self.description, self.statistics.snapshot(), "inactive")
        self._diagnostics.publish(diagnostic_array(status, self.get_clock().now().to_msg()))

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._load_model()
        except AnomalySegError as error:
            self.get_logger().error(f"configure failed: {error}")
            return TransitionCallbackReturn.FAILURE
        self._open_outputs(self.create_lifecycle_publisher)
        self._report_inactive(True)
        backend = self.description.backend if self.description else "no model"
        self.get_logger().info(f"configured: {backend}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._report_inactive(False)
        self._open_input()
        return super().on_activate(state)  # enables the lifecycle publishers

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._close_input()
        self._report_inactive(True)
        self.get_logger().info("deactivated")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._report_inactive(False)
        self._close_outputs(self.destroy_lifecycle_publisher)
        self._unload_model()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        self.shut_down = True
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"error in state {state.label}; releasing everything")
        self.stop()
        return TransitionCallbackReturn.SUCCESS  # back to unconfigured

    def stop(self) -> None:
        """Whatever the state: stop the input, free publishers and model (idempotent)."""
        self._report_inactive(False)
        self._close_input()
        self._close_outputs(self.destroy_lifecycle_publisher)
        self._unload_model()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``detector_lifecycle_node``; returns the process exit code."""

    def serve(node: DetectorLifecycleNode, stop: StopSignals) -> None:
        spin_until_stopped(node, stop, until=lambda: node.shut_down)

    return run_detector(args, DetectorLifecycleNode, serve)


if __name__ == "__main__":
    sys.exit(main())
