"""The default CameraInfo topic: the package's rule and the launch file's copy of it (the
launch file imports nothing of the package; the launch tests need `launch`, which has no
PyPI wheel, so its function is read out of the file and run here)."""

from __future__ import annotations

import ast
from pathlib import Path

from anomaly_seg_ros.io.object_messages import camera_info_topic

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
    launch_rule = namespace["camera_info_topic"]
    cases = {
        "/camera/image_raw": "/camera/camera_info",
        "/front/left/image_rect": "/front/left/camera_info",
        "/image": "/camera_info",
        "camera/image": "camera/camera_info",  # relative stays relative
        "image": "camera_info",
    }
    for image, info in cases.items():
        assert camera_info_topic(image) == info, image
        assert launch_rule(image) == info, image
