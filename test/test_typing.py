"""The whole package type-checks (mypy --strict, ``mypy.ini``), the TensorRT layer against
tensorrt-stubs, without a GPU. ``make test`` (CI) runs this.

tensorrt-stubs 10.13.0.35.1 cannot be used as installed: it puts ``tensorrt/__init__.pyi``
into a package without ``py.typed`` (mypy ignores it), its ``tensorrt_bindings`` stub has
syntax errors (parameters named ``in``; a required parameter after defaults), and a
module-level ``bool: DataType`` shadows the builtin in every ``-> bool`` annotation. So
the stubs are installed apart, with ``pip install --no-deps --target .venv/typing
tensorrt-stubs==10.13.0.35.1`` (``--no-deps``: its dependency on the real tensorrt wheel
downloads from NVIDIA's index and fails), copied here, repaired, and put on MYPYPATH.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STUBS_ENV = "TENSORRT_STUBS_DIR"


def find_stubs() -> Path | None:
    """The folder holding ``tensorrt_bindings/tensorrt.pyi``: $TENSORRT_STUBS_DIR, the
    repository's ``.venv/typing``, or an entry of sys.path."""
    candidates = [os.environ.get(STUBS_ENV), str(REPO / ".venv" / "typing"), *sys.path]
    for candidate in filter(None, candidates):
        folder = Path(candidate)
        if (folder / "tensorrt_bindings" / "tensorrt.pyi").is_file() and (
            folder / "tensorrt" / "__init__.pyi"
        ).is_file():
            return folder
    return None


def repaired_stubs(source: Path, target: Path) -> Path:
    """Copy the stubs into ``target`` and fix what stops mypy from reading them."""
    shutil.copytree(source / "tensorrt_bindings", target / "tensorrt_bindings")
    (target / "tensorrt").mkdir()
    shutil.copy(source / "tensorrt" / "__init__.pyi", target / "tensorrt" / "__init__.pyi")
    (target / "tensorrt_libs.pyi").write_text("")  # imported by the stub, ships no types
    stub = target / "tensorrt_bindings" / "tensorrt.pyi"
    text = stub.read_text()
    text = re.sub(r"([(,] *)in: ", r"\1in_: ", text)
    text = text.replace("channel_axis: int)", "channel_axis: int = ...)")
    text = re.sub(r"^bool: DataType.*$", "", text, flags=re.MULTILINE)
    stub.write_text(text)
    return target


def run_mypy(stubs: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "mypy.ini"), *arguments],
        cwd=REPO,
        env={**os.environ, "MYPYPATH": str(stubs)},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    pytest.importorskip("mypy")
    source = find_stubs()
    if source is None:
        pytest.skip(
            "tensorrt-stubs not installed: pip install --no-deps --target .venv/typing "
            "tensorrt-stubs==10.13.0.35.1"
        )
    return repaired_stubs(source, tmp_path_factory.mktemp("stubs"))


def test_package_passes_mypy_strict(stubs):
    result = run_mypy(stubs)  # the files listed in mypy.ini: anomaly_seg_ros/ and more
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout


def test_stubs_are_really_used(stubs, tmp_path):
    """A wrong TensorRT call must fail, or the check above would prove nothing."""
    wrong = tmp_path / "wrong_tensorrt_use.py"
    wrong.write_text(
        "import tensorrt as trt\n\n"
        "engine: trt.ICudaEngine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(b'')\n"
        "count: str = engine.num_io_tensors\n"
        "engine.execute_async_v3(0)\n"
    )
    result = run_mypy(stubs, str(wrong))
    assert result.returncode == 1
    assert 'incompatible types in assignment (expression has type "int"' in result.stdout.lower()
    assert '"ICudaEngine" has no attribute "execute_async_v3"' in result.stdout
