"""Launch the anomaly_seg_ros detector node, optionally with RViz.

    ros2 launch anomaly_seg_ros detector.launch.py image:=/camera/image_raw
    ros2 launch anomaly_seg_ros detector.launch.py image:=/front/image_raw \
        model_path:=/opt/models/deeplab.onnx backend:=tensorrt namespace:=front use_rviz:=true

    ros2 launch anomaly_seg_ros detector.launch.py lifecycle:=true   # managed node

The camera's calibration (``sensor_msgs/CameraInfo``, for the objects' ground positions) is
read from ``camera_info``; left empty it is the image topic's sibling, as camera drivers
and image_transport name it (``/camera/image_raw`` -> ``/camera/camera_info``).

Arguments left empty (model_path, backend) keep the values of ``params_file``. For a
compressed camera stream set ``input_compressed: true`` in the params file; the node then
reads ``<image>/compressed``. With ``lifecycle:=true`` the managed node starts unconfigured;
drive it with ``ros2 lifecycle set /anomaly_seg_detector configure`` (then ``activate``)
or a lifecycle manager.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnShutdown
from launch_ros.actions import LifecycleNode, Node

from launch import LaunchContext, LaunchDescription

PACKAGE = "anomaly_seg_ros"
NODE_NAME = "anomaly_seg_detector"
#: Topic names written in config/anomaly_seg.rviz, rewritten to the launched ones.
RVIZ_CAMERA_TOPIC = "/camera/image_raw"
RVIZ_OUTPUT_PREFIX = f"/{NODE_NAME}/"
#: The Fixed Frame written in config/anomaly_seg.rviz, rewritten to ``rviz_fixed_frame``.
RVIZ_FIXED_FRAME = "base_link"
#: Makes the node stop when this launch's process ends
#: (anomaly_seg_ros.ros.session.STOP_WITH_PARENT_VARIABLE): on SIGTERM ``ros2 launch``
#: ends without stopping what it launched.
STOP_WITH_PARENT_VARIABLE = "ANOMALY_SEG_STOP_WITH_PARENT"


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    arguments = [
        DeclareLaunchArgument(
            "image",
            default_value=RVIZ_CAMERA_TOPIC,
            description="camera topic (sensor_msgs/Image), remapped onto the node's `image`",
        ),
        DeclareLaunchArgument(
            "camera_info",
            default_value="",
            description="camera calibration topic (sensor_msgs/CameraInfo); empty = "
            "camera_info beside the image topic",
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
            description="auto | onnxruntime | tensorrt | torch; empty keeps params_file's value",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
        DeclareLaunchArgument(
            "lifecycle",
            default_value="false",
            description="start the managed node (detector_lifecycle_node), unconfigured",
        ),
        DeclareLaunchArgument(
            "use_rviz", default_value="false", description="also start RViz with the overlay"
        ),
        DeclareLaunchArgument(
            "rviz_fixed_frame",
            default_value=RVIZ_FIXED_FRAME,
            description="RViz fixed frame (the image panels need none; a frame that exists "
            "keeps RViz's global status OK)",
        ),
        DeclareLaunchArgument("log_level", default_value="info", description="node log level"),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_launch_nodes)])


def _is_true(text: str) -> bool:
    return text.lower() in ("true", "1", "yes")


def _launch_nodes(context: LaunchContext) -> list[object]:
    """Build the nodes once the arguments are known (empty ones must not override).

    :raises RuntimeError: ``use_rviz:=true`` but rviz2 is not installed; raised before
        anything starts, so no detector is left running without its viewer.
    """

    def argument(name: str) -> str:
        return context.launch_configurations[name]

    use_rviz = _is_true(argument("use_rviz"))
    if use_rviz:
        _require_rviz()
    overrides = {name: argument(name) for name in ("model_path", "backend") if argument(name)}
    namespace = argument("namespace").strip("/")
    lifecycle = _is_true(argument("lifecycle"))
    node_type = LifecycleNode if lifecycle else Node
    entities: list[object] = [
        node_type(
            package=PACKAGE,
            executable="detector_lifecycle_node" if lifecycle else "detector_node",
            name=NODE_NAME,
            namespace=namespace,
            parameters=[argument("params_file"), overrides],
            remappings=[
                ("image", argument("image")),
                ("camera_info", argument("camera_info") or camera_info_topic(argument("image"))),
            ],
            arguments=["--ros-args", "--log-level", argument("log_level")],
            output="screen",
            emulate_tty=True,
            additional_env={STOP_WITH_PARENT_VARIABLE: "1"},
        )
    ]
    if use_rviz:
        layout = _rviz_config(namespace, argument("image"), argument("rviz_fixed_frame"))
        entities.append(
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                arguments=["-d", layout],
                output="screen",
            )
        )
        # The layout is a temporary file; it goes when the launch ends, however it ends.
        entities.append(
            RegisterEventHandler(OnShutdown(on_shutdown=lambda event, context: _remove(layout)))
        )
    return entities


def camera_info_topic(image_topic: str) -> str:
    """The CameraInfo topic beside ``image_topic`` (``/cam/image_raw`` -> ``/cam/camera_info``);
    the rule of ``anomaly_seg_ros.io.object_messages.camera_info_topic`` (this file imports
    nothing of the package; test/test_launch_camera_info.py keeps the two equal)."""
    parent = image_topic.rsplit("/", 1)[0] if "/" in image_topic else ""
    return f"{parent}/camera_info" if parent or image_topic.startswith("/") else "camera_info"


def _require_rviz() -> None:
    try:
        get_package_share_directory("rviz2")
    except PackageNotFoundError:
        if shutil.which("rviz2") is None:
            raise RuntimeError(
                "use_rviz:=true but rviz2 is not installed (no rviz2 package on "
                "AMENT_PREFIX_PATH); install ros-$ROS_DISTRO-rviz2 or launch with "
                "use_rviz:=false"
            ) from None


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _rviz_config(namespace: str, camera_topic: str, fixed_frame: str) -> str:
    """The packaged RViz layout with topics matching this launch (a temporary copy)."""
    source = os.path.join(get_package_share_directory(PACKAGE), "config", "anomaly_seg.rviz")
    with open(source, encoding="utf-8") as stream:
        layout = stream.read()
    prefix = f"/{namespace}{RVIZ_OUTPUT_PREFIX}" if namespace else RVIZ_OUTPUT_PREFIX
    layout = layout.replace(f"Value: {RVIZ_OUTPUT_PREFIX}", f"Value: {prefix}")
    if not camera_topic.startswith("/"):  # relative: resolved in the node's namespace
        camera_topic = f"/{namespace}/{camera_topic}" if namespace else f"/{camera_topic}"
    layout = layout.replace(f"Value: {RVIZ_CAMERA_TOPIC}", f"Value: {camera_topic}")
    layout = layout.replace(f"Fixed Frame: {RVIZ_FIXED_FRAME}", f"Fixed Frame: {fixed_frame}")
    handle, path = tempfile.mkstemp(prefix="anomaly_seg_", suffix=".rviz")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(layout)
    return path
