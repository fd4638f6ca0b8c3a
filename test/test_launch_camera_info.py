"""The launch file's default CameraInfo topic (the launch tests need `launch`, which has no
PyPI wheel; this function needs nothing, so it is read out of the file and run here)."""

from __future__ import annotations

import ast
from pathlib import Path

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "detector.launch.py"


def test_camera_info_is_the_image_topics_sibling() -> None:
    tree = ast.parse(LAUNCH_FILE.read_text())
    (function,) = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name == "camera_info_topic"
    ]
    namespace: dict[str, object] = {}
    exec(compile(ast.Module([function], []), str(LAUNCH_FILE), "exec"), namespace)
    camera_info_topic = namespace["camera_info_topic"]
    assert camera_info_topic("/camera/image_raw") == "/camera/camera_info"
    assert camera_info_topic("/front/left/image_rect") == "/front/left/camera_info"
    assert camera_info_topic("/image") == "/camera_info"
    assert camera_info_topic("camera/image") == "camera/camera_info"  # relative stays relative
    assert camera_info_topic("image") == "camera_info"
