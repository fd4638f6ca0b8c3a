"""package.xml names every ROS package the node, the lifecycle node and the launch import."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET

from ros_harness import REPO

#: Top-level modules that come from ROS packages of the same name.
ROS_PACKAGES = {
    "rclpy",
    "rcl_interfaces",
    "builtin_interfaces",
    "lifecycle_msgs",
    "sensor_msgs",
    "std_msgs",
    "diagnostic_msgs",
    "geometry_msgs",
    "visualization_msgs",
    "ament_index_python",
    "launch",
    "launch_ros",
}


def imported_top_levels(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_every_imported_ros_package_is_an_exec_depend() -> None:
    root = ET.parse(REPO / "package.xml").getroot()
    exec_depends = {element.text for element in root.findall("exec_depend")}
    sources = [*(REPO / "anomaly_seg_ros").rglob("*.py"), *(REPO / "launch").glob("*.py")]
    used = set().union(*(imported_top_levels(path) for path in sources)) & ROS_PACKAGES
    assert {"rclpy", "sensor_msgs", "launch_ros"} <= used
    assert used <= exec_depends, used - exec_depends
    # rclpy.lifecycle needs lifecycle_msgs (services); rosbags is on PyPI only (bag tools).
    assert {"lifecycle_msgs", "python3-rosbags-pip"} <= exec_depends
    # RViz (and Qt) is optional: the launch refuses use_rviz:=true without it, so rosdep
    # must not install it on a headless car.
    assert "rviz2" not in exec_depends
