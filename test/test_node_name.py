"""The node name is one fact: the launch file (which runs without the package importable
in every launch setup) must spell it as anomaly_seg_ros.config.NODE_NAME does."""

import ast
from pathlib import Path

from anomaly_seg_ros.config import NODE_NAME

ROOT = Path(__file__).resolve().parents[1]


def test_launch_file_uses_the_package_node_name():
    tree = ast.parse((ROOT / "launch" / "detector.launch.py").read_text())
    values = [
        node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "NODE_NAME" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert values == [NODE_NAME]
    literals = [
        path
        for path in (ROOT / "anomaly_seg_ros").rglob("*.py")
        if f'"{NODE_NAME}"' in path.read_text() and path.name != "config.py"
    ]
    assert literals == []
