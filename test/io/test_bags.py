"""Bags that are bad or cannot be finished: real rosbag2 files, a real full file system."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.errors import ConfigError, InputError, OutputError
from anomaly_seg_ros.io.bag_run import run_bag
from anomaly_seg_ros.io.bags import IMAGE_TYPE, create_bag, open_bag, typestore
from anomaly_seg_ros.io.image import array_to_raw
from anomaly_seg_ros.io.messages import bag_image

STORE = typestore()
TOPIC = "/camera/image_raw"
FRAMES = 6


def _cdr(index: int, shape: tuple[int, int] = (48, 80)) -> bytes:
    header = STORE.types["std_msgs/msg/Header"](
        stamp=STORE.types["builtin_interfaces/msg/Time"](sec=10 + index, nanosec=0),
        frame_id="cam",
    )
    rgb = np.full((*shape, 3), 20 * index, np.uint8)
    image = bag_image(STORE.types[IMAGE_TYPE], array_to_raw(rgb, "rgb8"), header)
    return bytes(STORE.serialize_cdr(image, IMAGE_TYPE))


def write_input(
    path: Path,
    corrupt: dict[int, bytes] | None = None,
    storage: str = "mcap",
    shape: tuple[int, int] = (48, 80),
) -> None:
    """FRAMES camera frames; ``corrupt`` replaces some frames' CDR bytes."""
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        camera = writer.add_connection(TOPIC, IMAGE_TYPE, typestore=STORE)
        for index in range(FRAMES):
            data = (corrupt or {}).get(index, _cdr(index, shape))
            writer.write(camera, (10 + index) * 10**9, data)


@pytest.fixture(scope="module")
def detector(tiny_model):
    with Detector.from_path(tiny_model) as det:
        yield det


def test_bag_run_continues_past_corrupt_and_truncated_cdr(detector, tmp_path):
    good = _cdr(1)
    corrupt = {1: good[:4] + b"\xff" * (len(good) - 4), 3: good[: len(good) // 2]}
    write_input(tmp_path / "in", corrupt)
    report = run_bag(detector, tmp_path / "in", tmp_path / "out", progress=False)
    assert report.frames_in == FRAMES and report.frames_out == FRAMES - 2
    assert [time for time, _ in report.malformed] == [11 * 10**9, 13 * 10**9]
    assert all("undeserializable" in reason for _, reason in report.malformed)
    assert not report.complete
    with open_bag(tmp_path / "out") as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts[TOPIC] == FRAMES - 2
    assert counts["/anomaly_seg_detector/anomaly_score"] == FRAMES - 2


def test_a_run_with_every_frame_malformed_keeps_no_bag(detector, tmp_path):
    good = _cdr(1)
    write_input(tmp_path / "in", {index: good[: len(good) // 2] for index in range(FRAMES)})
    with pytest.raises(InputError, match=f"all {FRAMES} malformed.*no output bag written"):
        run_bag(detector, tmp_path / "in", tmp_path / "out", progress=False)
    assert list(tmp_path.iterdir()) == [tmp_path / "in"]  # no bag, no partial folder


def test_partial_folders_of_killed_runs_are_removed_at_the_next_run(detector, tmp_path):
    write_input(tmp_path / "in")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    living = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = socket.gethostname()
        killed = tmp_path / f".old.partial-{host}-{int(dead.stdout)}"
        running = tmp_path / f".other.partial-{host}-{living.pid}"
        remote = tmp_path / f".other.partial-elsewhere-{int(dead.stdout)}"
        for folder in (killed, running, remote):
            (folder / "bag").mkdir(parents=True)
            (folder / "bag" / "bag.mcap").write_bytes(bytes(1000))
        run_bag(detector, tmp_path / "in", tmp_path / "out", progress=False)
        assert not killed.exists()  # its process is gone: a killed run's leftovers
        assert running.exists() and remote.exists()  # in progress here, or another machine's
    finally:
        living.kill()
        living.wait()


def test_bag_folder_without_metadata_is_one_clear_error(tmp_path):
    write_input(tmp_path / "in")
    (tmp_path / "in" / "metadata.yaml").unlink()
    with pytest.raises(InputError, match=r"has no metadata\.yaml") as raised:
        with open_bag(tmp_path / "in"):
            pass
    assert "\n" not in str(raised.value)


def test_validation_fails_before_any_output_exists(detector, tmp_path):
    write_input(tmp_path / "in")
    with pytest.raises(ConfigError, match="/nope"):
        run_bag(detector, tmp_path / "in", tmp_path / "out", topic="/nope", progress=False)
    with pytest.raises(ConfigError, match="storage"):
        run_bag(detector, tmp_path / "in", tmp_path / "out", storage="zip", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
    # and the rerun with the right topic is not told "already exists"
    assert run_bag(
        detector, tmp_path / "in", tmp_path / "out", topic=TOPIC, progress=False
    ).complete


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_a_finished_bag_holds_no_temporary_names(tmp_path, storage):
    """The storage file is named after the bag, not after the hidden folder it was
    written in, and the metadata (and the mcap's own copy of it) says the same."""
    with create_bag(tmp_path / "drive", storage) as writer:
        connection = writer.add_connection(TOPIC, IMAGE_TYPE, typestore=STORE)
        writer.write(connection, 1, _cdr(0))
    assert [p.name for p in tmp_path.iterdir()] == ["drive"]
    suffix = {"mcap": ".mcap", "sqlite3": ".db3"}[storage]
    assert sorted(p.name for p in (tmp_path / "drive").iterdir()) == [
        f"drive{suffix}",
        "metadata.yaml",
    ]
    assert "partial" not in (tmp_path / "drive" / "metadata.yaml").read_text()
    with open_bag(tmp_path / "drive") as reader:
        assert reader.message_count == 1


def test_an_interrupted_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with create_bag(tmp_path / "out") as writer:
            connection = writer.add_connection(TOPIC, IMAGE_TYPE, typestore=STORE)
            writer.write(connection, 1, _cdr(0))
            raise RuntimeError("stopped half way")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_full_disk_is_one_clear_error_and_leaves_no_bag(detector, tmp_path, small_disk, storage):
    write_input(tmp_path / "in", shape=(256, 512))  # ~1.5 MB of results per frame
    out = small_disk / "out"
    with pytest.raises(OutputError, match="no space left") as raised:
        run_bag(detector, tmp_path / "in", out, storage=storage, progress=False)
    assert "\n" not in str(raised.value)
    assert list(small_disk.iterdir()) in ([], [small_disk / "lost+found"])
