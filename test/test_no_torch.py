"""The core and the ONNX Runtime backend run with torch (and rclpy) blocked, as on a car."""

import subprocess
import sys
import textwrap


def test_core_runs_without_torch_and_rclpy(tiny_model):
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        sys.modules["rclpy"] = None
        import numpy as np
        from anomaly_seg_ros.config import DetectorConfig
        from anomaly_seg_ros.detector import Detector
        import anomaly_seg_ros.pipeline.scores, anomaly_seg_ros.pipeline.refine
        import anomaly_seg_ros.pipeline.visualize
        config = DetectorConfig(boundary_suppression=True, dilated_smoothing=True, vde=True)
        with Detector.from_path({str(tiny_model)!r}, config, backend="auto") as detector:
            result = detector.detect(np.zeros((48, 96, 3), np.uint8), outputs=("overlay",))
            assert detector.backend.name == "onnxruntime", detector.backend.name
        assert result.labels.shape == (48, 96)
        leaked = [m for m in sys.modules if m.startswith(("torch.", "rclpy."))]
        assert not leaked, leaked
        print("OK")
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().endswith("OK")
