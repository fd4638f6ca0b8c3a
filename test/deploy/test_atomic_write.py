"""Crash-safe writes: the target is either the old or the new complete file, never a torso."""

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from anomaly_seg_ros.atomic import (
    FILE_MODE,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    remove_stale_temp_files,
    temp_prefix,
)

REPO = Path(__file__).resolve().parents[2]


def leftovers(target: Path) -> list[Path]:
    return sorted(target.parent.glob(temp_prefix(target) + "*"))


def test_write_creates_folder_and_file_with_readable_mode(tmp_path):
    target = tmp_path / "cache" / "model.engine"
    atomic_write_bytes(target, b"\x00engine\xff" * 1000)
    assert target.read_bytes() == b"\x00engine\xff" * 1000
    assert stat.S_IMODE(target.stat().st_mode) == FILE_MODE
    assert leftovers(target) == []


def test_write_replaces_existing_content(tmp_path):
    target = tmp_path / "model.engine"
    target.write_bytes(b"old engine")
    atomic_write_bytes(target, memoryview(b"new engine"))
    assert target.read_bytes() == b"new engine"
    assert leftovers(target) == []


def test_error_while_writing_keeps_target_and_removes_temp_file(tmp_path):
    target = tmp_path / "model.engine"
    target.write_bytes(b"old engine")

    def fail_halfway(temp_file):
        temp_file.write(b"half of the new")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, fail_halfway)
    assert target.read_bytes() == b"old engine"
    assert leftovers(target) == []


def test_process_killed_mid_write_leaves_target_untouched(tmp_path):
    """SIGKILL during the write: no cleanup code runs, exactly like a power cut."""
    target = tmp_path / "model.engine"
    target.write_bytes(b"old complete engine")
    script = textwrap.dedent(
        f"""
        import os, signal
        from anomaly_seg_ros.atomic import atomic_write

        def die_halfway(temp_file):
            temp_file.write(b"partial new engine")
            temp_file.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        atomic_write({str(target)!r}, die_halfway)
        """
    )
    process = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert process.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"old complete engine"
    (temp_file,) = leftovers(target)
    assert temp_file.read_bytes() == b"partial new engine"

    # A fresh leftover may belong to a writer still at work: kept unless old enough.
    assert remove_stale_temp_files(target, older_than_s=3600) == []
    assert temp_file.exists()
    assert remove_stale_temp_files(target) == [temp_file]
    assert leftovers(target) == []
    assert target.read_bytes() == b"old complete engine"


def test_remove_stale_temp_files_only_touches_this_targets_leftovers(tmp_path):
    target = tmp_path / "a.engine"
    mine = tmp_path / f"{temp_prefix(target)}abc.tmp"
    other = tmp_path / ".b.engine.abc.tmp"
    for path in (mine, other):
        path.write_bytes(b"x")
    old = time.time() - 7200
    os.utime(mine, (old, old))
    assert remove_stale_temp_files(target, older_than_s=3600) == [mine]
    assert other.exists()
    assert remove_stale_temp_files(tmp_path / "missing" / "x.engine") == []


def test_json_round_trip(tmp_path):
    target = tmp_path / "model.engine.json"
    document = {"key": {"gpu_name": "Orin", "input_shape": [1, 3, 512, 1024]}, "bytes": 12}
    atomic_write_json(target, document)
    assert json.loads(target.read_text()) == document
    assert target.read_text().endswith("\n")
