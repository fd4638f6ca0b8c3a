"""Launch the anomaly_seg_ros detector node, optionally with RViz.

    ros2 launch anomaly_seg_ros detector.launch.py image:=/camera/image_raw
    ros2 launch anomaly_seg_ros detector.launch.py image:=/front/image_raw \
        model_path:=/opt/models/deeplab.onnx backend:=tensorrt namespace:=front use_rviz:=true

Arguments left empty (model_path, backend) keep the values of ``params_file``. For a
compressed camera stream set ``input_compressed: true`` in the params file; the node then
reads ``<image>/compressed``.
"""

from __future__ import annotations

import os
import tempfile

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

from launch import LaunchContext, LaunchDescription

PACKAGE = "anomaly_seg_ros"
NODE_NAME = "anomaly_seg_detector"
#: Topic names written in config/anomaly_seg.rviz, rewritten to the launched ones.
RVIZ_CAMERA_TOPIC = "/camera/image_raw"
RVIZ_OUTPUT_PREFIX = f"/{NODE_NAME}/"


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    arguments = [
        DeclareLaunchArgument(
            "image",
            default_value=RVIZ_CAMERA_TOPIC,
            description="camera topic (sensor_msgs/Image), remapped onto the node's `image`",
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=os.path.join(share, "config", "detector.yaml"),
            description="node parameters (YAML, /**: ros__parameters)",
        ),
        DeclareLaunchArgument(
            "model_path",
            default_value="",
            description="exported model (.onnx or engine); empty keeps params_file's value",
        ),
        DeclareLaunchArgument(
            "backend",
            default_value="",
            description="auto | tensorrt | onnxruntime | torch; empty keeps params_file's value",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
        DeclareLaunchArgument(
            "use_rviz", default_value="false", description="also start RViz with the overlay"
        ),
        DeclareLaunchArgument("log_level", default_value="info", description="node log level"),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_launch_nodes)])


def _launch_nodes(context: LaunchContext) -> list[Node]:
    """Build the nodes once the arguments are known (empty ones must not override)."""

    def argument(name: str) -> str:
        return context.launch_configurations[name]

    overrides = {name: argument(name) for name in ("model_path", "backend") if argument(name)}
    namespace = argument("namespace").strip("/")
    nodes = [
        Node(
            package=PACKAGE,
            executable="detector_node",
            name=NODE_NAME,
            namespace=namespace,
            parameters=[argument("params_file"), overrides],
            remappings=[("image", argument("image"))],
            arguments=["--ros-args", "--log-level", argument("log_level")],
            output="screen",
            emulate_tty=True,
        )
    ]
    if argument("use_rviz").lower() in ("true", "1", "yes"):
        nodes.append(
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                arguments=["-d", _rviz_config(namespace, argument("image"))],
                output="screen",
            )
        )
    return nodes


def _rviz_config(namespace: str, camera_topic: str) -> str:
    """The packaged RViz layout with topics matching this launch (a temporary copy)."""
    source = os.path.join(get_package_share_directory(PACKAGE), "config", "anomaly_seg.rviz")
    with open(source, encoding="utf-8") as stream:
        layout = stream.read()
    prefix = f"/{namespace}{RVIZ_OUTPUT_PREFIX}" if namespace else RVIZ_OUTPUT_PREFIX
    layout = layout.replace(f"Value: {RVIZ_OUTPUT_PREFIX}", f"Value: {prefix}")
    if not camera_topic.startswith("/"):  # relative: resolved in the node's namespace
        camera_topic = f"/{namespace}/{camera_topic}" if namespace else f"/{camera_topic}"
    layout = layout.replace(f"Value: {RVIZ_CAMERA_TOPIC}", f"Value: {camera_topic}")
    handle, path = tempfile.mkstemp(prefix="anomaly_seg_", suffix=".rviz")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(layout)
    return path
