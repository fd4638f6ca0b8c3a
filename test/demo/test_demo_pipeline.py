"""The whole demo on a reduced drive: a real detector_node process over DDS, real bags."""

import json
import math

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.io.bags import open_bag
from anomaly_seg_ros.io.messages import stamp_ns
from demo.cli import main as demo_main
from demo.cli import node_overrides
from demo.drive_bag import CAMERA_TOPIC
from demo.pipeline import DemoOptions, run_demo

FRAMES = 10
OUTPUTS = ("labels", "labels_color", "anomaly_score", "anomaly_mask", "overlay")


def _header_stamps(bag, topics):
    stamps = {topic: [] for topic in topics}
    with open_bag(bag) as reader:
        chosen = [c for c in reader.connections if c.topic in stamps]
        for connection, _, raw in reader.messages(connections=chosen):
            stamps[connection.topic].append(stamp_ns(reader.deserialize(raw, connection.msgtype)))
    return stamps


@pytest.fixture(scope="module")
def demo(tiny_model, tmp_path_factory):
    options = DemoOptions(
        out_dir=tmp_path_factory.mktemp("demo"),
        model=tiny_model,
        frames=FRAMES,
        clip_frames=5,
        sheet_rows=4,
        png_every=5,
        progress=False,
    )
    return run_demo(options)


def test_frames_in_equal_frames_out_with_identical_stamps(demo):
    frames = demo.report["frames"]
    assert demo.frames_equal
    assert frames["in"] == FRAMES
    topics = [f"/anomaly_seg_detector/{name}" for name in OUTPUTS]
    assert frames["out"] == dict.fromkeys(topics, FRAMES)
    # Check the files themselves: every output topic carries the drive's stamps, once each.
    sent = _header_stamps(demo.files["drive_bag"], [CAMERA_TOPIC])[CAMERA_TOPIC]
    assert len(sent) == FRAMES
    recorded = _header_stamps(demo.files["output_bag"], topics)
    for topic in topics:
        assert sorted(recorded[topic]) == sorted(sent), topic
    with open_bag(demo.files["output_bag"]) as reader:
        recorded_topics = {c.topic for c in reader.connections}
        diagnostics = [c for c in reader.connections if c.topic == "/diagnostics"]
        assert diagnostics and sum(c.msgcount for c in diagnostics) >= 1
    objects = [f"/anomaly_seg_detector/{name}" for name in ("obstacle_points", "object_markers")]
    assert set(topics) | {"/diagnostics"} | set(objects) == recorded_topics


def test_the_node_publishes_objects_with_the_drives_camera_and_mount(demo):
    """The replay gives the node the drive's CameraInfo and mount: its obstacle points
    carry the drive's stamps, lie on the ground in the vehicle frame and ahead of it."""
    sent = set(_header_stamps(demo.files["drive_bag"], [CAMERA_TOPIC])[CAMERA_TOPIC])
    topic = "/anomaly_seg_detector/obstacle_points"
    with open_bag(demo.files["output_bag"]) as reader:
        chosen = [c for c in reader.connections if c.topic == topic]
        clouds = [
            reader.deserialize(raw, connection.msgtype)
            for connection, _, raw in reader.messages(connections=chosen)
        ]
    assert clouds and {stamp_ns(cloud) for cloud in clouds} <= sent
    assert all(cloud.header.frame_id == "base_link" for cloud in clouds)
    points = [
        np.frombuffer(bytes(cloud.data), np.dtype("<f4,<f4,<f4,<f4,<u4"))
        for cloud in clouds
        if cloud.width
    ]
    if points:  # the tiny random model may confirm no object; positions when it does
        merged = np.concatenate(points)
        assert np.allclose(merged["f2"], 0.0) and (merged["f0"] > 0).all()
    assert "bad CameraInfo" not in demo.files["node_log"].read_text()


def test_report_files_exist_and_are_readable(demo):
    for name in ("report_md", "report_json", "video", "contact_sheet", "node_log"):
        path = demo.files[name]
        assert path.is_file() and path.stat().st_size > 0, name
    sheet = cv2.imread(str(demo.files["contact_sheet"]))
    assert sheet is not None and sheet.shape[0] > 64 and sheet.shape[1] >= 2 * 128
    video = cv2.VideoCapture(str(demo.files["video"]))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    video.release()
    evaluation = demo.files["evaluation"]
    for name in ("results.md", "results.json", "pr.png", "roc.png", "timeline.png"):
        assert (evaluation / name).stat().st_size > 0, name
    for sub in ("original", "labels"):
        pngs = sorted((demo.files["drive_frames"] / sub).glob("*.png"))
        assert [p.name for p in pngs] == ["0000.png", "0005.png"], sub
    markdown = demo.files["report_md"].read_text()
    for heading in ("Frames in = frames out", "Metrics", "Latency and frame rate"):
        assert heading in markdown
    assert "**yes**" in markdown


def test_metrics_and_latency_are_finite_numbers(demo):
    # Strict JSON: NaN/Infinity would fail to parse with this hook.
    report = json.loads(
        demo.files["report_json"].read_text(), parse_constant=lambda name: pytest.fail(name)
    )
    anomaly = report["metrics"]["anomaly"]
    values = [
        anomaly["average_precision"],
        anomaly["fpr_at_95_tpr"],
        anomaly["auroc"],
        report["metrics"]["segmentation"]["miou"],
        report["latency"]["frames_per_second"],
        report["latency"]["round_trip_ms"]["p50"],
    ]
    assert all(isinstance(v, float) and math.isfinite(v) for v in values), values
    assert anomaly["num_positive"] > 0 and anomaly["num_negative"] > 0
    assert report["latency"]["frames_per_second"] > 0
    # Per-stage figures come from the node's own /diagnostics.
    assert report["latency"]["stages_ms"]["inference"]["p50"] > 0
    assert report["node"]["frames_processed"] == str(FRAMES)
    assert report["node"]["frames_dropped"] == "0"
    assert report["node"]["exit_code"] == 0
    assert report["model"]["backend"].startswith("onnxruntime")


def test_report_and_evaluation_are_one_computation(demo):
    """report.md/json and evaluation/results.md/json render the same result: same numbers,
    same frame counts, object-level figures in both."""
    report = json.loads(demo.files["report_json"].read_text())
    evaluation = demo.files["evaluation"]
    results = json.loads((evaluation / "results.json").read_text())
    score = results["scores"]["anomaly_score"]
    metrics = report["metrics"]
    assert metrics["anomaly"] == score["pixel"]
    assert metrics["objects"] == score["objects"]
    assert metrics["source"] == str(evaluation / "results.json")
    counts = {key: results["settings"][key] for key in metrics["frames"]}
    assert metrics["frames"] == counts
    assert counts["frames"] == counts["frames_with_label"] == FRAMES
    line = f"frames in: {FRAMES}, paired with ground truth: {FRAMES}, unpaired: 0"
    markdown, results_md = demo.files["report_md"].read_text(), (evaluation / "results.md")
    assert line in markdown and line in results_md.read_text()
    objects = metrics["objects"]
    assert objects["frames"] == FRAMES and objects["obstacles"] > 0
    assert objects["threshold"] == report["node"]["threshold"]
    table = "| obstacle area | obstacles | found | found-rate |"
    assert table in markdown and table in results_md.read_text()
    assert (evaluation / "objects_by_area.png").stat().st_size > 0


def test_node_overrides_and_missing_model(tmp_path):
    assert node_overrides(["threshold:=1.5", "score_type:=sml"]) == {
        "threshold": "1.5",
        "score_type": "sml",
    }
    with pytest.raises(ConfigError, match="NAME:=VALUE"):
        node_overrides(["threshold=1.5"])
    code = demo_main(["--model", str(tmp_path / "none.onnx"), "--out", str(tmp_path / "o")])
    assert code == 1
    assert not (tmp_path / "o").exists(), "nothing is written before the model is found"
