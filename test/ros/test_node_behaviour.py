"""Run-time parameters, load, start-up failures and lazy outputs of the node over DDS."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from ros_harness import REPO, NodeUnderTest, camera_frame
from std_msgs.msg import Header

from anomaly_seg_ros.ros.messages import array_to_message

NODE_COMMAND = (sys.executable, "-m", "anomaly_seg_ros.ros.node", "--ros-args")


def run_node(*parameters: str) -> subprocess.CompletedProcess[str]:
    """Start the node with ``-p`` parameters and wait for it to exit (start-up checks)."""
    arguments = [argument for parameter in parameters for argument in ("-p", parameter)]
    return subprocess.run(
        [*NODE_COMMAND, *arguments],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def set_parameters(node: NodeUnderTest, **values: object) -> list[tuple[bool, str]]:
    """Call the node's set_parameters service; (successful, reason) per parameter."""
    client = node.client.node.create_client(
        SetParameters, f"{node.namespace}/anomaly_seg_detector/set_parameters"
    )
    try:
        assert client.wait_for_service(timeout_sec=10.0)
        parameters = [Parameter(name, value=value) for name, value in values.items()]
        request = SetParameters.Request(parameters=[p.to_parameter_msg() for p in parameters])
        future = client.call_async(request)
        node.client.wait_for(future.done, 10.0, "set_parameters")
        return [(result.successful, result.reason) for result in future.result().results]
    finally:
        node.client.node.destroy_client(client)


def frame_message(index: int) -> object:
    header = Header(frame_id="cam")
    header.stamp.sec = index
    return array_to_message(camera_frame(index), "rgb8", header)


def send(node: NodeUnderTest, index: int, name: str = "labels") -> None:
    before = node.recorder.count(name)
    node.publisher.publish(frame_message(index))
    node.client.wait_for(lambda: node.recorder.count(name) > before, 20.0, name)


def last_mask(node: NodeUnderTest) -> np.ndarray:
    with node.recorder.lock:
        message = node.recorder.messages["anomaly_mask"][-1][1]
    return np.frombuffer(message.data, np.uint8)


def test_parameters_change_at_run_time_and_bad_values_are_rejected(tiny_model, start_node) -> None:
    node = start_node({"model_path": tiny_model, "qos_profile": "reliable"})
    assert set_parameters(node, threshold=-1e9) == [(True, "")]
    send(node, 1, "anomaly_mask")
    assert (last_mask(node) == 255).all()
    assert set_parameters(node, threshold=1e9, score_type="entropy") == [(True, "")] * 2
    send(node, 2, "anomaly_mask")
    assert (last_mask(node) == 0).all()

    rejected = {
        "score_type": "bogus",  # DetectorConfig validation
        "smoothing_kernel": 4,  # descriptor range: odd sizes only
        "overlay_alpha": 1.5,  # descriptor range
        "model_path": "/elsewhere.onnx",  # read-only
    }
    for name, value in rejected.items():
        ((successful, reason),) = set_parameters(node, **{name: value})
        assert not successful and reason, name
    ((successful, reason),) = set_parameters(node, score_type="sml")
    assert not successful and "SML statistics" in reason  # the model has no statistics

    assert set_parameters(node, publish_overlay=False) == [(True, "")]
    before = node.recorder.count("overlay")
    send(node, 3, "anomaly_mask")
    send(node, 4, "anomaly_mask")
    assert node.recorder.count("overlay") == before
    send(node, 5, "labels")  # still alive, still at the changed threshold
    assert (last_mask(node) == 0).all()


def test_unsubscribed_outputs_are_not_computed(tiny_model, start_node) -> None:
    node = start_node({"model_path": tiny_model, "qos_profile": "reliable"}, outputs=("labels",))
    for index in range(3):
        send(node, index)
    # The node counts a frame just after publishing its outputs, so the first report after
    # the third output may still say 2: wait for the next ones (1 Hz) before judging.
    diagnostics = node.recorder.latest_diagnostics()
    for _ in range(3):
        if diagnostics["frames_processed"] == "3":
            break
        diagnostics = node.recorder.latest_diagnostics()
    assert "latency_inference_p50_ms" in diagnostics
    assert "latency_visualize_p50_ms" not in diagnostics  # no colour or overlay was made
    assert diagnostics["frames_processed"] == "3"


def test_burst_against_slow_inference_keeps_latency_bounded(tiny_model, start_node) -> None:
    delay = 0.25
    node = start_node(
        {"model_path": tiny_model, "qos_profile": "reliable", "debug_inference_delay": delay},
        outputs=("labels",),
    )
    frames = 100
    started = time.time()
    for index in range(frames):  # 100 Hz for one second
        message = frame_message(index)
        message.header.stamp.sec, nanoseconds = divmod(time.time_ns(), 10**9)
        message.header.stamp.nanosec = nanoseconds
        node.publisher.publish(message)
        time.sleep(max(0.0, started + (index + 1) / frames - time.time()))
    # Wait until the outputs have stopped coming (a loaded machine may still be finishing
    # the last frame): a late output is judged by its latency below, not lost by the wait.
    time.sleep(2 * delay + 0.5)
    arrivals: list = []
    deadline = time.monotonic() + 15.0
    while time.monotonic() < deadline:
        with node.recorder.lock:
            now = list(node.recorder.messages["labels"])
        if now and len(now) == len(arrivals):
            break
        arrivals = now
        time.sleep(2 * delay + 0.5)
    latencies = [
        received - (m.header.stamp.sec + m.header.stamp.nanosec * 1e-9) for received, m in arrivals
    ]
    assert 2 <= len(latencies) <= 1.0 / delay + 3
    # Newest wins: at most one inference waiting plus one running, never a growing queue.
    assert max(latencies) < 2 * delay + 0.5, latencies
    # The node counts a frame just after publishing it: a report may lag one frame behind.
    diagnostics = node.recorder.latest_diagnostics()
    for _ in range(3):
        if int(diagnostics["frames_processed"]) == len(latencies):
            break
        diagnostics = node.recorder.latest_diagnostics()
    received, dropped = int(diagnostics["frames_received"]), int(diagnostics["frames_dropped"])
    assert int(diagnostics["frames_processed"]) == len(latencies)
    assert received == len(latencies) + dropped
    assert dropped >= frames // 2


def test_missing_or_mismatched_model_fails_at_start(tiny_model, tmp_path) -> None:
    mismatched = tmp_path / "mismatched.onnx"
    shutil.copy(tiny_model, mismatched)
    sidecar = json.loads(tiny_model.with_suffix(".json").read_text())
    sidecar["input_height"] = 32  # the graph says 64
    mismatched.with_suffix(".json").write_text(json.dumps(sidecar))
    cases = {tmp_path / "absent.onnx": "does not exist", mismatched: "cannot start"}
    for model, problem in cases.items():
        run = run_node(f"model_path:={model}")
        assert run.returncode == 1
        assert problem in run.stderr + run.stdout
        assert "Traceback" not in run.stderr


def test_invalid_start_up_parameter_fails_with_its_name(tiny_model) -> None:
    run = run_node(f"model_path:={tiny_model}", "score_type:=nonsense")
    assert run.returncode == 1
    assert "score_type 'nonsense' unknown" in run.stderr + run.stdout


@pytest.mark.slow
def test_memory_stays_flat_over_2000_frames(tiny_model, start_node) -> None:
    node = start_node({"model_path": tiny_model, "qos_profile": "reliable"})
    pid = node.process.process.pid

    def rss_kib() -> int:
        with open(f"/proc/{pid}/status") as status:
            line = next(line for line in status if line.startswith("VmRSS"))
        return int(line.split()[1])

    for index in range(200):
        send(node, index)
    baseline = rss_kib()
    for index in range(200, 2_000):
        node.publisher.publish(frame_message(index))
        time.sleep(0.004)
    send(node, 2_001)
    assert rss_kib() < 1.10 * baseline


def test_build_only_loads_the_model_and_exits_zero(tiny_model, tmp_path) -> None:
    run = run_node(
        f"model_path:={tiny_model}", "build_only:=true", f"engine_cache_dir:={tmp_path}"
    )
    assert run.returncode == 0, run.stderr + run.stdout
    assert "build_only: model ready (onnxruntime" in run.stderr + run.stdout


def test_model_of_another_input_size_is_refused(tiny_model) -> None:
    run = run_node(f"model_path:={tiny_model}", "input_height:=128")
    assert run.returncode == 1
    assert "input size is 64x128 but input_height/input_width ask for 128x0" in (
        run.stderr + run.stdout
    )
