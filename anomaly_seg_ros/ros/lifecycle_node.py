"""``detector_lifecycle_node``: the detector node with ``autostart`` off, for Nav2/Autoware-style
bring-up.

It starts *unconfigured*: parameters declared (``ros2 param set`` works, the start-up ones
such as ``model_path`` included), nothing loaded. ``ros2 lifecycle set /anomaly_seg_detector
<transition>`` then:

* ``configure``  — load the model (for TensorRT: build or read the cached engine) and
  create the output publishers; a missing model fails the transition, naming the file, and
  the node stays unconfigured: set ``model_path`` again and configure again;
* ``activate``   — subscribe to the camera, start inference and ``/diagnostics`` (while
  configured but inactive, ``/diagnostics`` reports WARN "inactive");
* ``deactivate`` — unsubscribe; the frame in flight is finished and published;
* ``cleanup``    — free the model and the publishers (back to unconfigured);
* ``shutdown``   — from any state: all of the above, then the process exits 0.

The node is :class:`~anomaly_seg_ros.ros.node.DetectorNode`; ``detector_node`` is the same
node with ``autostart`` on (it configures and activates itself). An executable of its own
because a lifecycle manager expects a node that waits from its first moment, whatever the
params file says; ``-p autostart:=true`` makes this one start itself too.
"""

from __future__ import annotations

import sys

from anomaly_seg_ros.ros.node import main as detector_main


def main(args: list[str] | None = None) -> int:
    """Entry point of ``detector_lifecycle_node``; returns the process exit code."""
    return detector_main(args, autostart=False)


if __name__ == "__main__":
    sys.exit(main())
