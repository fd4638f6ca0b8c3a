"""ROS conventions over DDS: rclpy's own parameters, whole-request validation, dump/load,
the bundled model's calibrated settings, start-up hints, every frame counted."""

from __future__ import annotations

import math
import time

from rcl_interfaces.srv import GetParameters, ListParameters, SetParameters
from rclpy.parameter import Parameter, parameter_value_to_python
from ros_harness import NodeUnderTest
from test_node_behaviour import frame_message, run_node, set_parameters

from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.model.bundled import calibrated_config, default_model_path


def call(node: NodeUnderTest, service_type: type, name: str, request: object) -> object:
    client = node.client.node.create_client(
        service_type, f"{node.namespace}/anomaly_seg_detector/{name}"
    )
    try:
        assert client.wait_for_service(timeout_sec=10.0)
        future = client.call_async(request)
        node.client.wait_for(future.done, 10.0, name)
        return future.result()
    finally:
        node.client.node.destroy_client(client)


def get_values(node: NodeUnderTest, *names: str) -> dict[str, object]:
    response = call(node, GetParameters, "get_parameters", GetParameters.Request(names=names))
    return {name: parameter_value_to_python(v) for name, v in zip(names, response.values)}


def set_request(node: NodeUnderTest, parameters: list[Parameter]) -> list[tuple[bool, str]]:
    request = SetParameters.Request(parameters=[p.to_parameter_msg() for p in parameters])
    response = call(node, SetParameters, "set_parameters", request)
    return [(result.successful, result.reason) for result in response.results]


def test_rclpy_parameters_pass_and_a_pair_is_validated_per_request(tiny_model, start_node) -> None:
    node = start_node({"model_path": tiny_model, "qos_profile": "reliable"})
    assert set_parameters(node, use_sim_time=True) == [(True, "")]
    # What `ros2 param load` sends for a file with both: one request, judged as a whole
    # (6 is no multiple of the current 4, but is of the new 3).
    pair = [
        Parameter("boundary_suppression", value=True),
        Parameter("boundary_width", value=6),
        Parameter("boundary_iterations", value=3),
    ]
    assert [ok for ok, _ in set_request(node, pair)] == [True] * 3
    values = get_values(node, "boundary_width", "boundary_iterations", "use_sim_time")
    assert values == {"boundary_width": 6, "boundary_iterations": 3, "use_sim_time": True}
    # A pair that is wrong together is still refused, with the reason.
    ((ok, reason),) = set_request(node, [Parameter("boundary_width", value=5)])
    assert not ok and "multiple of boundary_iterations 3" in reason
    for bad in (math.nan, math.inf):
        ((ok, reason),) = set_parameters(node, threshold=bad)
        assert not ok and "threshold" in reason and "finite" in reason
    node.publisher.publish(frame_message(1))
    node.client.wait_for(lambda: node.recorder.count("labels") > 0, 20.0, "a frame")


def test_loading_the_nodes_own_dump_succeeds(tiny_model, start_node) -> None:
    node = start_node({"model_path": tiny_model, "qos_profile": "reliable"})
    listed = call(node, ListParameters, "list_parameters", ListParameters.Request())
    names = list(listed.result.names)
    response = call(node, GetParameters, "get_parameters", GetParameters.Request(names=names))
    # `ros2 param dump` then `ros2 param load`: every value, read-only ones included.
    request = SetParameters.Request()
    for name, value in zip(names, response.values):
        message = Parameter("x").to_parameter_msg()
        message.name, message.value = name, value
        request.parameters.append(message)
    results = call(node, SetParameters, "set_parameters", request).results
    failures = {n: r.reason for n, r in zip(names, results) if not r.successful}
    assert not failures
    assert {"model_path", "use_sim_time", "threshold"} <= set(names)


def test_the_bundled_model_runs_with_its_calibrated_settings(start_node) -> None:
    calibrated = calibrated_config(default_model_path())
    assert calibrated is not None
    names = ("score_type", "threshold", "vde", "boundary_suppression", "dilated_smoothing")
    expected = {name: getattr(calibrated, name) for name in names}
    defaults = DetectorConfig()
    # the check means something only where the calibrated file differs from the defaults
    assert any(expected[name] != getattr(defaults, name) for name in names)
    assert expected["threshold"] != defaults.threshold
    node = start_node({"qos_profile": "reliable"}, outputs=("anomaly_mask",))
    assert get_values(node, *names) == expected
    # An explicit value still wins over the calibrated one.
    override = start_node({"qos_profile": "reliable", "threshold": 7.5}, outputs=("labels",))
    assert get_values(override, "threshold") == {"threshold": 7.5}


def test_start_up_errors_name_the_value_and_what_is_allowed(tiny_model) -> None:
    cases = {
        "smoothing_kernel:=4": "allowed: 1 to 63 in steps of 2",
        "threshold:=1": "expected a float like 0.0",
        "publish_mask:=7": "expected a boolean like True",
        "threshold:=.nan": "threshold nan must be a finite number",
    }
    for parameter, expected in cases.items():
        run = run_node(f"model_path:={tiny_model}", parameter)
        output = run.stdout + run.stderr
        assert run.returncode == 1, (parameter, output)
        assert expected in output and "Traceback" not in output, (parameter, output)
        assert "expected a int" not in output


def test_every_frame_is_counted_also_without_subscribers(tiny_model, start_node) -> None:
    # Depth 10: with depth 1 DDS itself may replace a sample before the callback sees it.
    node = start_node(
        {"model_path": tiny_model, "qos_profile": "reliable", "qos_depth": 10}, outputs=()
    )
    for index in range(5):
        node.publisher.publish(frame_message(index))
        time.sleep(0.05)
    deadline = time.monotonic() + 15.0
    diagnostics = node.recorder.latest_diagnostics()
    while diagnostics["frames_received"] != "5" and time.monotonic() < deadline:
        diagnostics = node.recorder.latest_diagnostics()
    counts = {
        key: int(diagnostics[f"frames_{key}"])
        for key in ("received", "processed", "dropped", "skipped_no_subscribers", "malformed")
    }
    assert counts["received"] == 5
    assert counts["received"] == sum(v for k, v in counts.items() if k != "received"), counts
    assert counts["skipped_no_subscribers"] >= 1 and counts["processed"] == 0
    assert diagnostics["output_rate_hz"] == "0.00"


def test_bad_model_files_end_the_node_with_one_line(tiny_model, tmp_path) -> None:
    import json
    import shutil

    folder = tmp_path / "models"
    folder.mkdir()
    model = folder / "model.onnx"
    shutil.copy(tiny_model, model)
    sidecar = json.loads(tiny_model.with_suffix(".json").read_text())
    garbage = tmp_path / "garbage.sml.json"
    garbage.write_bytes(b"\x00\xff not json")
    listed = tmp_path / "listed.sml.json"
    listed.write_text("[1, 2]")
    cases = [
        ({"model_path": folder}, json.dumps(sidecar), f"model_path {folder} is a directory"),
        ({"model_path": model}, "[1, 2]", "not an anomaly_seg_ros model sidecar (a JSON list"),
        (
            {"model_path": model},
            json.dumps({**sidecar, "std": [0.2, float("nan"), 0.2]}),
            "must be finite numbers",
        ),
        ({"model_path": model, "sml_stats_path": garbage}, json.dumps(sidecar), "garbage.sml"),
        ({"model_path": model, "sml_stats_path": listed}, json.dumps(sidecar), "a JSON list"),
    ]
    for parameters, sidecar_text, expected in cases:
        model.with_suffix(".json").write_text(sidecar_text)
        run = run_node(*(f"{name}:={value}" for name, value in parameters.items()))
        output = run.stdout + run.stderr
        assert run.returncode == 1, (parameters, output)
        assert expected in output and "Traceback" not in output, (parameters, output)
        fatal = [line for line in output.splitlines() if "FATAL" in line]
        assert len(fatal) == 1, output
