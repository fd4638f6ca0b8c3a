"""The evaluation toolkit imports and computes metrics with torch and rclpy blocked."""

import subprocess
import sys
import textwrap


def test_evaluation_modules_import_without_torch_and_rclpy():
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        sys.modules["rclpy"] = None
        import numpy as np
        import anomaly_seg_ros.evaluation as evaluation
        modules = pkgutil.iter_modules(evaluation.__path__)
        names = [f"anomaly_seg_ros.evaluation.{module.name}" for module in modules]
        names += ["anomaly_seg_ros.datasets.anomaly", "anomaly_seg_ros.commands.evaluate",
                  "anomaly_seg_ros.commands.calibrate"]
        for name in names:
            importlib.import_module(name)
        from anomaly_seg_ros.evaluation.factory import pixel_metrics
        metrics = pixel_metrics(np.array([0.1, 0.9], np.float32), np.array([0, 1], np.uint8))
        assert metrics.auroc == 1.0
        leaked = [m for m in sys.modules if m.startswith(("torch.", "rclpy."))]
        assert not leaked, leaked
        print("OK", len(names))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("OK")
    assert int(completed.stdout.split()[1]) >= 17
