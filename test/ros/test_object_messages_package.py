"""The typed object list: ``msgs/anomaly_seg_msgs`` built by a real ``colcon build`` (ament_cmake
+ rosidl from the PyPI wheels), sourced like a user does, and ``~/objects`` over real DDS.

The subscriber runs in its own process with the sourced environment (the generated C
libraries are found through LD_LIBRARY_PATH / AMENT_PREFIX_PATH, which a running Python
cannot change for itself).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ros_harness import REPO
from test_node_objects import PARAMETERS, ObjectTopics, camera_info, cloud_points

RECORD = r"""
import json, sys, rclpy
from anomaly_seg_msgs.msg import AnomalyObjectArray
from anomaly_seg_ros.ros.session import output_qos

def plain(value):
    if hasattr(value, "get_fields_and_field_types"):
        return {name: plain(getattr(value, name)) for name in value.get_fields_and_field_types()}
    if isinstance(value, (list, tuple)) or type(value).__name__ in ("array", "ndarray"):
        return [plain(item) for item in value]
    return value

topic, count = sys.argv[1], int(sys.argv[2])
rclpy.init()
node = rclpy.create_node("objects_recorder")
seen = []
subscription = node.create_subscription(
    AnomalyObjectArray, topic, lambda message: seen.append(plain(message)), output_qos(100)
)
while subscription.get_publisher_count() == 0:
    rclpy.spin_once(node, timeout_sec=0.1)
print("ready", flush=True)
while len(seen) < count:
    rclpy.spin_once(node, timeout_sec=0.1)
for message in seen:
    print(json.dumps(message), flush=True)
"""


@pytest.fixture(scope="session")
def sourced_messages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``colcon build`` of the message package; the environment of its ``setup.sh``."""
    bin_folder = Path(sys.executable).parent
    colcon = shutil.which("colcon", path=str(bin_folder)) or shutil.which("colcon")
    if colcon is None or shutil.which("cmake") is None:
        pytest.skip("colcon or cmake is not installed (scripts/setup_env.sh installs colcon)")
    workspace = tmp_path_factory.mktemp("msgs_ws")
    # The documented layout: the repository in src/, its message package a second base path
    # (colcon does not look for packages inside a package folder).
    (workspace / "src").mkdir()
    (workspace / "src" / "anomaly_seg_ros").symlink_to(REPO, target_is_directory=True)
    environment = {
        **os.environ,
        "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}",
        # The ROS wheels' ament index (rosidl's type supports are registered there).
        "AMENT_PREFIX_PATH": str(Path(sys.prefix)),
    }
    build = subprocess.run(
        [colcon, "--log-base", "log", "build", "--base-paths", "src", "src/anomaly_seg_ros/msgs"],
        cwd=workspace,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    for package in ("anomaly_seg_ros", "anomaly_seg_msgs"):
        assert f"Finished <<< {package}" in build.stdout, build.stdout[-4000:]
    printed = subprocess.run(
        ["sh", "-c", ". install/setup.sh && env -0"],
        cwd=workspace,
        env=environment,
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout.decode()
    sourced = dict(line.split("=", 1) for line in printed.split("\0") if "=" in line)
    names = ("AMENT_PREFIX_PATH", "PYTHONPATH", "LD_LIBRARY_PATH")
    return {name: sourced[name] for name in names if name in sourced}


def test_typed_object_list_over_dds(tiny_model, start_node, sourced_messages) -> None:
    environment = {
        **sourced_messages,
        "LD_LIBRARY_PATH": os.pathsep.join(
            part
            for part in (
                sourced_messages.get("LD_LIBRARY_PATH"),
                os.environ.get("LD_LIBRARY_PATH"),
            )
            if part
        ),
    }
    node = start_node(
        {"model_path": tiny_model, **PARAMETERS}, outputs=(), environment=environment
    )
    topics = ObjectTopics(node, ("obstacle_points",))
    frames = 3
    recorder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RECORD,
            f"{node.namespace}/anomaly_seg_detector/objects",
            str(frames),
        ],
        env={
            **os.environ,
            **environment,
            "PYTHONPATH": os.pathsep.join((str(REPO), sourced_messages.get("PYTHONPATH", ""))),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert recorder.stdout is not None
        line = recorder.stdout.readline()
        assert line.strip() == "ready", line + recorder.stderr.read()  # type: ignore[union-attr]
        for index in range(frames):
            topics.send(index, camera_info())
        output, errors = recorder.communicate(timeout=60)
    finally:
        if recorder.poll() is None:
            recorder.kill()
    assert recorder.returncode == 0, errors
    messages = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert len(messages) == frames
    for index, message in enumerate(messages):
        stamp = message["header"]["stamp"]
        assert (stamp["sec"], stamp["nanosec"]) == (100 + index, 5 * index)
        assert message["header"]["frame_id"] == "car"
        assert message["camera_frame_id"] == "cam"
    assert messages[0]["objects"] == []  # seen once: not confirmed yet
    (item,) = messages[-1]["objects"]
    assert item["confirmed"] and item["hits"] == frames and item["age"] == frames - 1
    assert item["has_position"] and item["misses"] == 0
    # The same place in every frame: a still object (if the track estimates a velocity).
    assert (
        not item["has_velocity"] or math.hypot(item["velocity"]["x"], item["velocity"]["y"]) < 0.5
    )
    box = item["box"]
    assert (box["x_offset"], box["y_offset"], box["width"], box["height"]) == (0, 0, 80, 48)
    assert item["touches_border"] and item["area_px"] == 80 * 48
    expected = 1.5 / math.tan(0.2 + math.atan(23.5 / 60.0))
    assert abs(item["position"]["x"] - expected) < 0.5
    assert abs(item["range_m"] - math.hypot(item["position"]["x"], item["position"]["y"])) < 0.5
    assert item["range_sigma_m"] > 0 and item["lateral_extent_m"] > 0
    assert math.isnan(item["on_road_fraction"]) or 0.0 <= item["on_road_fraction"] <= 1.0
    assert set(cloud_points(topics.last("obstacle_points"))["id"]) == {item["id"]}
    topics.close()
    assert node.close() == 0
    assert "no ~/objects" not in node.process.output
