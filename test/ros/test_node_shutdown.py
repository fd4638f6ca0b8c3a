"""Stopping the node: repeated signals while it infers, SIGHUP, and a crashed run's leftovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ros_harness import REPO, NodeUnderTest, RosClient, camera_frame
from std_msgs.msg import Header

from anomaly_seg_ros.ros.messages import array_to_message
from anomaly_seg_ros.ros.shared_memory import SHM_DIR, lock_is_held, remove_stale_segments

DELAY = 0.3  # seconds of (imitated) inference: the node is always busy with one frame
SIGNAL_PAIRS = (
    (signal.SIGINT, signal.SIGINT),  # Ctrl-C in a terminal + the copy `ros2 launch` forwards
    (signal.SIGINT, signal.SIGTERM),
    (signal.SIGTERM, signal.SIGTERM),
    (signal.SIGTERM, signal.SIGINT),
    (signal.SIGHUP, signal.SIGINT),
)


class Feeder:
    """Publishes frames at 20 Hz from a thread, so inference never runs dry."""

    def __init__(self, node: NodeUnderTest) -> None:
        self.node = node
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        index = 0
        while self.running:
            header = Header(frame_id="cam")
            header.stamp.sec = index
            self.node.publisher.publish(array_to_message(camera_frame(index), "rgb8", header))
            index += 1
            time.sleep(0.05)

    def stop(self) -> None:
        self.running = False
        self.thread.join()


def start_busy_node(ros_client: RosClient, tiny_model: Path) -> tuple[NodeUnderTest, Feeder]:
    node = NodeUnderTest(
        ros_client,
        {"model_path": tiny_model, "qos_profile": "reliable", "debug_inference_delay": DELAY},
        outputs=("labels",),
    )
    feeder = Feeder(node)
    ros_client.wait_for(lambda: node.recorder.count("labels") >= 2, 30.0, "the node to infer")
    return node, feeder


def stop_with(node: NodeUnderTest, first: int, second: int | None) -> tuple[int, float, str]:
    """Send ``first``, then ``second`` 100 ms later; (exit code, seconds, output)."""
    process = node.process.process
    started = time.monotonic()
    process.send_signal(first)
    if second is not None:
        time.sleep(0.1)
        if process.poll() is None:
            process.send_signal(second)
    output, _ = process.communicate(timeout=30)
    return process.returncode, time.monotonic() - started, output


def test_two_signals_while_busy_always_exit_zero_and_clean(tiny_model, ros_client) -> None:
    durations = []
    for run in range(20):
        first, second = SIGNAL_PAIRS[run % len(SIGNAL_PAIRS)]
        node, feeder = start_busy_node(ros_client, tiny_model)
        try:
            code, seconds, output = stop_with(node, first, second)
        finally:
            feeder.stop()
            node.recorder.close()
            ros_client.node.destroy_publisher(node.publisher)
        label = f"run {run} ({first.name} + {second.name}): exit {code}\n{output}"
        assert code == 0, label
        for bad in ("Traceback", "RCLError", "terminate called", "context is invalid"):
            assert bad not in output, label
        assert "detector closed" in output and "stopped cleanly" in output, label
        durations.append(seconds)
    # Within 1 s of the first signal plus the one inference in flight (process exit included).
    assert max(durations) < 1.0 + DELAY, durations


def test_sighup_stops_like_sigterm(tiny_model, ros_client) -> None:
    node, feeder = start_busy_node(ros_client, tiny_model)
    try:
        code, _, output = stop_with(node, signal.SIGHUP, None)
    finally:
        feeder.stop()
        node.recorder.close()
    assert code == 0, output
    assert "SIGHUP received, shutting down" in output and "detector closed" in output


def fast_dds_locks() -> set[str]:
    """Lock files of Fast DDS data segments (port files are Fast DDS's own business)."""
    return {path.name for path in SHM_DIR.glob("fastdds_*_el") if "_port" not in path.name}


def test_shared_memory_of_a_killed_node_is_removed_at_the_next_start(
    tiny_model, ros_client
) -> None:
    before = fast_dds_locks()
    node = NodeUnderTest(ros_client, {"model_path": tiny_model}, outputs=("labels",))
    mine = fast_dds_locks() - before  # this node's segment (other processes may add theirs)
    node.process.process.send_signal(signal.SIGKILL)
    node.process.process.communicate(timeout=30)
    node.recorder.close()
    left = {name for name in mine if (SHM_DIR / name).exists()}
    assert left, "a SIGKILLed Fast DDS participant should leave its segment behind"
    assert all(not lock_is_held(SHM_DIR / name) for name in left)
    sizes = sum((SHM_DIR / name[:-3]).stat().st_size for name in left)
    assert sizes >= 64 * 2**20  # the large-image profile's segment

    second = NodeUnderTest(ros_client, {"model_path": tiny_model}, outputs=("labels",))
    assert not any((SHM_DIR / name).exists() for name in left)
    assert not any((SHM_DIR / name[:-3]).exists() for name in left)
    assert second.close() == 0, second.process.output
    assert "stale Fast DDS shared-memory" in second.process.output


def test_segments_in_use_are_left_alone(tmp_path) -> None:
    import fcntl

    live, dead = tmp_path / "fastdds_0123456789abcdef", tmp_path / "fastdds_fedcba9876543210"
    for segment in (live, dead):
        segment.write_bytes(b"x" * 100)
        Path(f"{segment}_el").write_bytes(b"")
    other = tmp_path / "unrelated_el"
    other.write_bytes(b"")
    with open(f"{live}_el", "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)  # as its live owner does
        report = remove_stale_segments(tmp_path)
    assert set(report.removed) == {dead, Path(f"{dead}_el")}
    assert report.in_use == 1 and report.freed_bytes == 100
    assert live.exists() and other.exists()


#: What the installed ``detector_node`` script runs (setup.py's console_scripts entry).
CONSOLE_SCRIPT = "import sys; from anomaly_seg_ros.ros.entry import detector_node; " \
    "sys.exit(detector_node())"  # fmt: skip


def test_a_signal_during_start_up_exits_zero_in_one_line(tmp_path) -> None:
    # From the imports (about the first 0.5 s here, up to 1.1 s on a loaded machine)
    # through model loading into spinning: no traceback, no FATAL, exit 0.
    outcomes = []
    for delay, number in [(0.15, signal.SIGINT), (0.15, signal.SIGTERM), (0.4, signal.SIGINT),
                          (0.7, signal.SIGTERM), (1.0, signal.SIGINT)]:  # fmt: skip
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CONSOLE_SCRIPT,
                "--ros-args",
                "-r",
                f"__ns:=/start_{int(delay * 100)}",
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(delay)
        process.send_signal(number)
        output, _ = process.communicate(timeout=60)
        outcomes.append((delay, number.name, process.returncode, output))
    for delay, name, code, output in outcomes:
        assert code == 0, (delay, name, output)
        assert "Traceback" not in output and "FATAL" not in output, (delay, name, output)


# A stand-in for `ros2 launch` ended by SIGTERM: it starts the node in a session of its own
# (as launch's ExecuteProcess does) and then dies without signalling it.
LAUNCHER = """
import os, subprocess, sys, time
log, watch, *command = sys.argv[1:]
environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
if watch == "1":
    from anomaly_seg_ros.ros.session import STOP_WITH_PARENT_VARIABLE
    environment[STOP_WITH_PARENT_VARIABLE] = "1"
with open(log, "w") as output:
    node = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                            start_new_session=True, env=environment)
print(node.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _orphan_node(tiny_model: Path, tmp_path: Path, watch: bool) -> tuple[int, Path]:
    """Start a node through LAUNCHER, wait until it detects, SIGKILL the launcher."""
    log = tmp_path / "node.log"
    command = [sys.executable, "-c", LAUNCHER, str(log), "1" if watch else "0"]
    command += [sys.executable, "-m", "anomaly_seg_ros.ros.node", "--ros-args"]
    command += ["-r", f"__ns:=/orphan{os.getpid()}{int(watch)}", "-p", f"model_path:={tiny_model}"]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    launcher = subprocess.Popen(
        command, cwd=REPO, env=environment, stdout=subprocess.PIPE, text=True
    )
    node_pid = int(launcher.stdout.readline())
    deadline = time.monotonic() + 60
    while "detecting on" not in log.read_text():
        assert time.monotonic() < deadline and _alive(node_pid), log.read_text()
        time.sleep(0.1)
    launcher.kill()  # like launch on SIGTERM: gone, its node not told
    launcher.communicate(timeout=10)
    return node_pid, log


def test_a_launched_node_stops_when_its_launcher_ends_without_stopping_it(
    tiny_model, tmp_path
) -> None:
    node_pid, log = _orphan_node(tiny_model, tmp_path, watch=True)
    deadline = time.monotonic() + 10
    while _alive(node_pid):
        assert time.monotonic() < deadline, f"the orphaned node still runs:\n{log.read_text()}"
        time.sleep(0.1)
    output = log.read_text()
    assert "end of the parent process received, shutting down" in output, output
    assert "stopped cleanly" in output and "Traceback" not in output, output


def test_a_node_started_otherwise_outlives_its_parent(tiny_model, tmp_path) -> None:
    """Without the launch file's variable (a node run under nohup, say) it keeps running."""
    node_pid, log = _orphan_node(tiny_model, tmp_path, watch=False)
    try:
        time.sleep(1.0)  # ten spin periods
        assert _alive(node_pid), log.read_text()
    finally:
        _interrupt(node_pid)


def _interrupt(pid: int) -> None:
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
