"""Backend names are defined once (``BACKEND_CHOICES``); the texts that list them agree."""

from __future__ import annotations

from pathlib import Path

from anomaly_seg_ros.backends import BACKEND_CHOICES, BACKEND_FACTORIES
from anomaly_seg_ros.node_settings import NodeSettings

REPO = Path(__file__).resolve().parents[2]


def test_choices_are_auto_and_every_factory():
    assert BACKEND_CHOICES == ("auto", *BACKEND_FACTORIES)
    for name in BACKEND_CHOICES:
        assert NodeSettings(backend=name).backend == name


def test_config_and_launch_file_list_the_same_backends():
    """The launch file cannot import the package (it runs in `ros2 launch`'s Python), and
    the YAML is data: their lists are copies, checked here."""
    listed = " | ".join(BACKEND_CHOICES)
    yaml_comment = f"# inference backend: {', '.join(BACKEND_CHOICES)} (restart)"
    assert yaml_comment in (REPO / "config" / "detector.yaml").read_text()
    assert f'"{listed};' in (REPO / "launch" / "detector.launch.py").read_text()
    page = (REPO / "docs" / "parameters.md").read_text()
    assert f"inference backend: {', '.join(BACKEND_CHOICES)} |" in page
