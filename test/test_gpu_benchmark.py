"""benchmarks/gpu.py's path without a GPU, and without OpenCV, ONNX Runtime or PyYAML.

A bare GPU machine has torch (and numpy beside it, or numpy's wheel in benchmarks/gpu_wheels)
but none of the package's other dependencies; the script must run all of its torch path
there. Here it runs ``--device cpu --quick`` in a subprocess in which those three cannot be
imported, so the host stages go through benchmarks/cv2_fallback.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BLOCKED = ("cv2", "onnxruntime", "yaml")

# The blocked modules look absent (None in sys.modules: `import` raises ImportError and
# importlib.util.find_spec, which torch probes optional modules with, returns None); then
# the script runs as __main__ with the given arguments.
RUN_BLOCKED = """
import runpy, sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
script, *arguments = sys.argv[2:]
sys.argv = [script, *arguments]
runpy.run_path(script, run_name="__main__")
"""


def test_gpu_check_runs_its_torch_path_on_a_cpu_without_opencv_onnxruntime_yaml() -> None:
    pytest.importorskip("torch")
    command = [sys.executable, "-c", RUN_BLOCKED, ",".join(BLOCKED), "benchmarks/gpu.py"]
    command += ["--device", "cpu", "--quick", "--precisions", "fp32", "fp16"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output, output
    assert "no OpenCV: host stages on benchmarks/cv2_fallback.py" in output
    for model in ("bundled 256x512", "resnet101 128x256"):
        assert model in output, output
    # CPU against CPU: the parity line is exact, and the three settings (plain, refined
    # on the host, refined in the torch graph) have a latency row.
    assert output.count("parity vs CPU fp32: labels 100.00 % equal") == 2, output
    assert output.count("Detector.detect") == 6, output
    assert output.count(" in-graph network ") == 2, output
    assert "NON-FINITE" not in output, output
    assert output.count("fp16: CUDA only") == 2, output
    assert "tensorrt: not available" in output


def test_cv2_fallback_matches_opencv_on_the_host_stages(rng) -> None:
    """The stand-in's calls against OpenCV's: equal for the integer and comparison calls,
    float sums and the bilinear resize to float tolerance (another summation order)."""
    cv2 = pytest.importorskip("cv2")
    sys.path.insert(0, str(REPO / "benchmarks"))
    import cv2_fallback as fallback

    labels = rng.integers(0, 19, (37, 53)).astype(np.uint8)
    for shape in (cv2.MORPH_CROSS, cv2.MORPH_RECT):
        kernel = cv2.getStructuringElement(shape, (3, 3))
        np.testing.assert_array_equal(fallback.getStructuringElement(shape, (3, 3)), kernel)
        np.testing.assert_array_equal(fallback.dilate(labels, kernel), cv2.dilate(labels, kernel))
        np.testing.assert_array_equal(fallback.erode(labels, kernel), cv2.erode(labels, kernel))
    scores = rng.normal(size=(37, 53)).astype(np.float32)
    ones = np.ones((3, 3), np.float32)
    replicate = cv2.BORDER_REPLICATE
    np.testing.assert_allclose(
        fallback.filter2D(scores, -1, ones, borderType=replicate),
        cv2.filter2D(scores, -1, ones, borderType=replicate),
        atol=1e-5,  # float32 sums of nine values in another order
    )
    np.testing.assert_array_equal(
        fallback.compare(labels, 3, cv2.CMP_EQ), cv2.compare(labels, 3, cv2.CMP_EQ)
    )
    np.testing.assert_array_equal(fallback.add(labels, labels * 20), cv2.add(labels, labels * 20))
    counts = rng.integers(0, 3, (37, 53)).astype(np.uint8)  # as refine.py: uint8 counts
    divided = counts > 0  # where refine.py uses the quotient (OpenCV 5 gives inf elsewhere)
    np.testing.assert_allclose(
        fallback.divide(scores, counts, dtype=cv2.CV_32F)[divided],
        cv2.divide(scores, counts, dtype=cv2.CV_32F)[divided],
        rtol=1e-6,
    )
    for size in ((106, 74), (20, 11)):  # up and down
        np.testing.assert_array_equal(
            fallback.resize(labels, size, interpolation=cv2.INTER_NEAREST),
            cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST),
        )
        np.testing.assert_allclose(
            fallback.resize(scores, size, interpolation=cv2.INTER_LINEAR),
            cv2.resize(scores, size, interpolation=cv2.INTER_LINEAR),
            atol=1e-4,  # OpenCV interpolates float32 with float32 weights
        )
    for size in ((106, 74), (20, 11)):  # labels back to camera size: pixel centre to centre
        np.testing.assert_array_equal(
            fallback.resize(labels, size, interpolation=cv2.INTER_NEAREST_EXACT),
            cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST_EXACT),
        )
    even = rng.normal(size=(40, 60)).astype(np.float32)  # integer factors: the same averages
    np.testing.assert_allclose(
        fallback.resize(even, (20, 10), interpolation=cv2.INTER_AREA),
        cv2.resize(even, (20, 10), interpolation=cv2.INTER_AREA),
        atol=1e-5,
    )
    spread = scores.copy()
    spread[3, 4] = np.nan
    finite = np.isfinite(spread).view(np.uint8)
    assert fallback.checkRange(spread)[0] == cv2.checkRange(spread)[0] is False
    np.testing.assert_allclose(
        fallback.meanStdDev(spread, mask=finite), cv2.meanStdDev(spread, mask=finite), rtol=1e-9
    )
    with pytest.raises(AttributeError, match=r"not in benchmarks/cv2_fallback\.py"):
        getattr(fallback, "findContours")  # noqa: B009  (one line naming what is missing)
