"""The ament_python package: metadata, and a real `colcon build` of a workspace holding it."""

import os
import shutil
import subprocess
import sys
import textwrap
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
    for folder in ("launch", "config"):
        tracked = sorted(p.relative_to(ROOT) for p in (ROOT / folder).rglob("*") if p.is_file())
        for relative in tracked:
            assert (share / relative).is_file(), f"{relative} not installed"
    # Only what a model needs at run time goes to share: no checkpoints, cards or metrics.
    runtime = (".onnx", ".json", ".sml.json", ".params.yaml")
    for model in (ROOT / "models").rglob("*.onnx"):
        for suffix in runtime:
            companion = model.with_name(model.name[: -len(".onnx")] + suffix)
            if companion.is_file():
                relative = companion.relative_to(ROOT)
                assert (share / relative).is_file(), f"{relative} not installed"
    installed = sorted(p.relative_to(share) for p in (share / "models").rglob("*") if p.is_file())
    assert installed and not [p for p in installed if p.suffix == ".pt"], installed
    for relative in installed:
        folder, name = share / relative.parent, relative.name
        assert any(
            name.endswith(s) and (folder / f"{name[: -len(s)]}.onnx").is_file() for s in runtime
        ), f"{relative} is not a runtime model file"
    check_install_is_self_contained(prefix, tmp_path, environment)


def check_install_is_self_contained(prefix: Path, tmp_path: Path, environment: dict) -> None:
    """Every module the executables can reach imports from the install alone (not the
    source tree); ``anomaly-seg demo``, whose demo/ stays in the checkout, says so in one line."""
    site = next(prefix.glob("lib/python3*/site-packages"))
    installed = {path.name for path in site.iterdir()}
    assert not installed & {"training", "demo", "research"}, installed  # checkout only
    alone = {**environment, "PYTHONPATH": str(site)}
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import anomaly_seg_ros
        assert anomaly_seg_ros.__file__.startswith(sys.argv[1]), anomaly_seg_ros.__file__
        gpu_only = ("tensorrt", "cuda")  # the TensorRT backend needs the GPU runtimes
        failed = []
        for module in pkgutil.walk_packages(anomaly_seg_ros.__path__, "anomaly_seg_ros."):
            try:
                importlib.import_module(module.name)
            except ImportError as error:
                if error.name is None or error.name.split(".")[0] not in gpu_only:
                    failed.append(f"{module.name}: {error}")
        assert not failed, failed
        print("OK")
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, str(site)],
        cwd=tmp_path,
        env=alone,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    demo = subprocess.run(
        [sys.executable, str(prefix / "lib" / "anomaly_seg_ros" / "anomaly-seg"), "demo"],
        cwd=tmp_path,
        env=alone,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode != 0
    assert "source-tree tool" in demo.stderr and "Traceback" not in demo.stderr, demo.stderr
