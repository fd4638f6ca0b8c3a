"""The ament_python package: metadata, and a real `colcon build` of a workspace holding it."""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_package_xml_is_format_3_ament_python():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "anomaly_seg_ros"
    assert root.find("export/build_type").text == "ament_python"
    exec_depends = {element.text for element in root.findall("exec_depend")}
    assert {"rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs", "launch_ros"} <= exec_depends
    assert (ROOT / "resource" / "anomaly_seg_ros").is_file()


def test_setup_cfg_puts_scripts_where_ros2_run_looks():
    text = (ROOT / "setup.cfg").read_text()
    assert "script_dir=$base/lib/anomaly_seg_ros" in text
    assert "install_scripts=$base/lib/anomaly_seg_ros" in text


def test_colcon_build_installs_executables_and_share(tmp_path):
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent)) or shutil.which(
        "colcon"
    )
    if colcon is None:
        pytest.skip("colcon is not installed (scripts/setup_env.sh installs it)")
    source = tmp_path / "src"
    source.mkdir()
    (source / "anomaly_seg_ros").symlink_to(ROOT, target_is_directory=True)
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    completed = subprocess.run(
        [
            colcon,
            "--log-base",
            str(tmp_path / "log"),
            "build",
            "--base-paths",
            str(source),
            "--build-base",
            str(tmp_path / "build"),
            "--install-base",
            str(tmp_path / "install"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    prefix = tmp_path / "install" / "anomaly_seg_ros"
    for script in ("detector_node", "anomaly-seg"):
        assert os.access(prefix / "lib" / "anomaly_seg_ros" / script, os.X_OK), script
    share = prefix / "share" / "anomaly_seg_ros"
    assert (share / "package.xml").is_file()
    marker = prefix / "share" / "ament_index" / "resource_index" / "packages" / "anomaly_seg_ros"
    assert marker.is_file()
    for folder in ("launch", "config", "models"):
        tracked = sorted(p.relative_to(ROOT) for p in (ROOT / folder).rglob("*") if p.is_file())
        for relative in tracked:
            assert (share / relative).is_file(), f"{relative} not installed"
