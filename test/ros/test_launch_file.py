"""launch/detector.launch.py under a real `launch`/`launch_ros` against a colcon install.

`launch` and `launch_ros` are not on PyPI, so these tests run only when
ANOMALY_SEG_LAUNCH_PYTHON names a Python that has them and AMENT_PREFIX_PATH includes a
colcon install of this package (docs/ros.md, "Verifying the launch file", sets this up).
The launch runs in that interpreter; this process publishes and records over DDS.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from ros_harness import Recorder, camera_frame
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from anomaly_seg_ros.ros.messages import array_to_message

LAUNCH_PYTHON = os.environ.get("ANOMALY_SEG_LAUNCH_PYTHON", "")
pytestmark = pytest.mark.skipif(
    not LAUNCH_PYTHON,
    reason="needs ANOMALY_SEG_LAUNCH_PYTHON (a Python with launch + launch_ros) and a colcon "
    "install of anomaly_seg_ros on AMENT_PREFIX_PATH; see docs/ros.md",
)


LAUNCH_ARGUMENTS = ("image:=/cam/front", "namespace:=front", "backend:=onnxruntime")


def launch_environment() -> dict[str, str]:
    """This environment minus the ROS wheels' bootstrap marker, so the launch Python
    sets up its own library path instead of inheriting this interpreter's."""
    hidden = ("_ROS_WHEELS_BOOTSTRAP_COMPLETE", "LD_LIBRARY_PATH")
    return {name: value for name, value in os.environ.items() if name not in hidden}


# What `ros2 launch anomaly_seg_ros detector.launch.py ARG:=VALUE ...` does, minus ros2cli.
RUN_LAUNCH = """
import os, sys
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription, LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
path = os.path.join(get_package_share_directory("anomaly_seg_ros"), "launch",
                    "detector.launch.py")
arguments = dict(argument.split(":=", 1) for argument in sys.argv[1:])
service = LaunchService()
service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
    PythonLaunchDescriptionSource(path), launch_arguments=arguments.items())]))
sys.exit(service.run())
"""

# Evaluate the launch description with use_rviz:=true without starting anything.
INSPECT_RVIZ = """
import json, os, sys
from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.launch_description_sources import get_launch_description_from_python_launch_file
path = os.path.join(get_package_share_directory("anomaly_seg_ros"), "launch",
                    "detector.launch.py")
description = get_launch_description_from_python_launch_file(path)
context = LaunchContext()
context.launch_configurations.update(
    {"use_rviz": "true", "namespace": "rear", "image": "camera/image",
     "rviz_fixed_frame": "front_camera"})
nodes = []
for entity in description.entities:
    if isinstance(entity, DeclareLaunchArgument):
        entity.visit(context)
    elif isinstance(entity, OpaqueFunction):
        nodes += entity.execute(context)
nodes = [entity for entity in nodes if hasattr(entity, "node_package")]
rviz = [node for node in nodes if node.node_package == "rviz2"][0]
config = [a for a in rviz._Node__arguments if str(a).endswith(".rviz")]
print(json.dumps({"packages": [node.node_package for node in nodes],
                  "config": open(config[0]).read() if config else ""}))
"""


def test_launch_file_starts_the_node_with_remapping_namespace_and_model(
    tiny_model, ros_client
) -> None:
    launch = subprocess.Popen(
        [LAUNCH_PYTHON, "-c", RUN_LAUNCH, *LAUNCH_ARGUMENTS, f"model_path:={tiny_model}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=launch_environment(),
    )
    recorder = Recorder(ros_client, "/front", ("labels", "anomaly_mask"))
    publisher = ros_client.node.create_publisher(Image, "/cam/front", 10)
    try:
        ros_client.wait_for(
            lambda: publisher.get_subscription_count() > 0 or launch.poll() is not None,
            60.0,
            "the launched node",
        )
        assert launch.poll() is None, launch.communicate()[0]
        header = Header(frame_id="front_camera")
        header.stamp.sec = 42
        deadline = time.monotonic() + 30.0
        while recorder.count("anomaly_mask") == 0 and time.monotonic() < deadline:
            publisher.publish(array_to_message(camera_frame(1), "rgb8", header))
            time.sleep(0.3)  # the default input QoS is best effort: resend until seen
        assert recorder.stamps("anomaly_mask")[0] == (42, 0, "front_camera")
    finally:
        launch.send_signal(signal.SIGINT)
        output, _ = launch.communicate(timeout=30)
        recorder.close()
        ros_client.node.destroy_publisher(publisher)
    assert launch.returncode == 0, output
    assert "detecting on /cam/front" in output


def test_use_rviz_adds_rviz_with_topics_of_this_launch(tmp_path) -> None:
    run = subprocess.run(
        [LAUNCH_PYTHON, "-c", INSPECT_RVIZ],
        capture_output=True,
        text=True,
        timeout=60,
        env=fake_rviz_environment(tmp_path),
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["packages"] == ["anomaly_seg_ros", "rviz2"]
    assert "Value: /rear/anomaly_seg_detector/overlay" in found["config"]
    assert "Value: /rear/camera/image" in found["config"]


def fake_rviz_environment(folder) -> dict[str, str]:
    """An environment with an ``rviz2`` executable on PATH (RViz itself is not run here)."""
    rviz = folder / "rviz2"
    rviz.write_text("#!/bin/sh\nsleep 60\n")
    rviz.chmod(0o755)
    environment = launch_environment()
    environment["PATH"] = f"{folder}:{environment.get('PATH', '')}"
    return environment


def test_use_rviz_rewrites_topics_and_fixed_frame(tmp_path) -> None:
    run = subprocess.run(
        [LAUNCH_PYTHON, "-c", INSPECT_RVIZ],
        capture_output=True,
        text=True,
        timeout=60,
        env=fake_rviz_environment(tmp_path),
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert "Fixed Frame: front_camera" in found["config"]


def test_use_rviz_without_rviz2_starts_nothing(tiny_model, tmp_path) -> None:
    environment = launch_environment()
    environment["PATH"] = os.pathsep.join(
        folder for folder in environment["PATH"].split(os.pathsep) if "rviz" not in folder
    )
    environment["TMPDIR"] = str(tmp_path)
    run = subprocess.run(
        [LAUNCH_PYTHON, "-c", RUN_LAUNCH, "use_rviz:=true", f"model_path:={tiny_model}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "rviz2 is not installed" in output
    assert "detecting on" not in output  # the detector never started
    assert not list(tmp_path.glob("anomaly_seg_*.rviz"))


def test_lifecycle_launch_starts_the_managed_node(tiny_model, ros_client) -> None:
    from lifecycle_msgs.srv import GetState

    launch = subprocess.Popen(
        [
            LAUNCH_PYTHON,
            "-c",
            RUN_LAUNCH,
            "lifecycle:=true",
            "namespace:=managed",
            f"model_path:={tiny_model}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=launch_environment(),
    )
    client = ros_client.node.create_client(GetState, "/managed/anomaly_seg_detector/get_state")
    try:
        assert client.wait_for_service(timeout_sec=60.0)
        future = client.call_async(GetState.Request())
        ros_client.wait_for(future.done, 10.0, "get_state")
        assert future.result().current_state.label == "unconfigured"
    finally:
        launch.send_signal(signal.SIGINT)
        output, _ = launch.communicate(timeout=30)
        ros_client.node.destroy_client(client)
    assert launch.returncode == 0, output


def test_ctrl_c_on_a_launched_node_receiving_frames_exits_cleanly(tiny_model, ros_client) -> None:
    """A terminal's Ctrl-C signals the whole process group; launch forwards another
    SIGINT: the node gets two while frames arrive, and must still exit 0, cleaned up."""
    launch = subprocess.Popen(
        [LAUNCH_PYTHON, "-c", RUN_LAUNCH, "image:=/cam/busy", "namespace:=busy",
         f"model_path:={tiny_model}", "log_level:=info"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=launch_environment(),
        start_new_session=True,  # its own process group, like a terminal's job
    )  # fmt: skip
    recorder = Recorder(ros_client, "/busy", ("labels",))
    publisher = ros_client.node.create_publisher(Image, "/cam/busy", 10)
    try:
        ros_client.wait_for(
            lambda: publisher.get_subscription_count() > 0 or launch.poll() is not None,
            60.0,
            "the launched node",
        )
        header = Header(frame_id="cam")
        deadline = time.monotonic() + 30.0
        while recorder.count("labels") < 3 and time.monotonic() < deadline:
            publisher.publish(array_to_message(camera_frame(1), "rgb8", header))
            time.sleep(0.05)
        assert recorder.count("labels") >= 3
        for _ in range(3):  # keep it busy right up to the signal
            publisher.publish(array_to_message(camera_frame(2), "rgb8", header))
        os.killpg(launch.pid, signal.SIGINT)
        output, _ = launch.communicate(timeout=30)
    finally:
        if launch.poll() is None:
            os.killpg(launch.pid, signal.SIGKILL)
        recorder.close()
        ros_client.node.destroy_publisher(publisher)
    assert launch.returncode == 0, output
    assert "stopped cleanly" in output and "detector closed" in output, output
    for bad in ("Traceback", "terminate called", "RCLError", "exit code -"):
        assert bad not in output, output


def test_sigterm_to_the_launch_process_alone_stops_the_node(tiny_model, ros_client) -> None:
    """Upstream launch cancels its run on SIGTERM without signalling the node; the node the
    package's launch file starts watches its parent (ANOMALY_SEG_STOP_WITH_PARENT) and stops
    by itself."""
    launch = subprocess.Popen(
        [LAUNCH_PYTHON, "-c", RUN_LAUNCH, "image:=/cam/term", "namespace:=term",
         f"model_path:={tiny_model}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=launch_environment(),
        start_new_session=True,  # the signal reaches the launch process only
    )  # fmt: skip
    publisher = ros_client.node.create_publisher(Image, "/cam/term", 10)

    def node_listed() -> bool:
        names = ros_client.node.get_node_names_and_namespaces()
        return ("anomaly_seg_detector", "/term") in names

    try:
        ros_client.wait_for(lambda: publisher.get_subscription_count() > 0, 60.0, "the node")
        launch.send_signal(signal.SIGTERM)
        launch.wait(timeout=30)
        ros_client.wait_for(lambda: not node_listed(), 15.0, "the orphaned node to stop")
    finally:
        if launch.poll() is None:
            os.killpg(launch.pid, signal.SIGKILL)
        ros_client.node.destroy_publisher(publisher)
