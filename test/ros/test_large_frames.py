"""Camera-sized frames from a stock publisher (Fast DDS defaults, no profile) reach the node.

This process is the "stock camera driver": its participant uses Fast DDS's defaults
(the large-image profile is only loaded by this package's executables). A reliable
publisher of 6 MB rgb8 frames reaches the node only through a reliable subscription
(`qos_profile: reliable`): best effort lets Fast DDS drop the fragments of large samples
(README, troubleshooting).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from std_msgs.msg import Header

from anomaly_seg_ros.ros.messages import array_to_message

HEIGHT, WIDTH = 1024, 2048  # 6 MB rgb8, as from a 2 MP camera


def test_six_megabyte_frames_from_a_default_publisher_all_arrive(tiny_model, start_node) -> None:
    if os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE"):
        pytest.skip(
            "an earlier in-process test loaded the package's Fast DDS profile here, so this "
            "process is no stock publisher; run this file on its own"
        )
    node = start_node(
        {"model_path": tiny_model, "qos_profile": "reliable"}, outputs=("anomaly_mask",)
    )
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    frames = 20
    for index in range(frames):
        header = Header(frame_id="camera")
        header.stamp.sec = index
        node.publisher.publish(array_to_message(frame, "rgb8", header))
        time.sleep(0.2)  # 5 Hz

    def accounted_for() -> bool:
        # received alone is not enough: the last frame may still be in flight at the tick
        if not node.recorder.diagnostics:
            return False
        latest = node.recorder.diagnostics[-1]
        done = int(latest["frames_processed"]) + int(latest["frames_dropped"])
        return int(latest["frames_received"]) == frames and done == frames

    node.client.wait_for(accounted_for, 30.0, "every frame to arrive and be processed or dropped")
    last = node.recorder.diagnostics[-1]
    assert int(last["frames_malformed"]) == 0
    assert int(last["frames_processed"]) + int(last["frames_dropped"]) == frames
    assert node.recorder.count("anomaly_mask") == int(last["frames_processed"]) >= 1


def test_a_reliable_camera_meeting_the_best_effort_default_gets_a_hint(
    tiny_model, start_node
) -> None:
    node = start_node(
        {"model_path": tiny_model, "qos_profile": "sensor_data"}, outputs=("labels",)
    )
    node.recorder.latest_diagnostics(after=1.0)  # the hint comes with the diagnostics tick
    assert node.close() == 0
    assert "publishes" in node.process.output and "set qos_profile: auto or reliable" in (
        node.process.output
    )
