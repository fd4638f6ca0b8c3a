"""`anomaly-seg bag run` and `bag play` on real rosbag2 files (MCAP and sqlite3)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from ros_harness import REPO, camera_frame
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from sensor_msgs.msg import Image

from anomaly_seg_ros.commands import bag as bag_command
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.io.bag_run import default_outputs, run_bag
from anomaly_seg_ros.io.bags import open_bag, typestore
from anomaly_seg_ros.io.compressed import encode_compressed
from anomaly_seg_ros.io.outputs import OUTPUT_TOPIC_NAMES

STORE = typestore()
TOPICS = [f"/anomaly_seg_detector/{name}" for name in OUTPUT_TOPIC_NAMES]
FRAMES = 7
PERIOD_NS = 50_000_000  # 20 Hz


def header(index: int) -> object:
    Time = STORE.types["builtin_interfaces/msg/Time"]
    Header = STORE.types["std_msgs/msg/Header"]
    return Header(stamp=Time(sec=500 + index, nanosec=11 * index), frame_id="front")


def write_bag(
    path: Path, storage: str, compressed: bool = False, broken: int = -1, truth: bool = False
) -> None:
    """A bag with FRAMES camera frames on /camera/image_raw, a text topic, frame ``broken``
    truncated (malformed) and, with ``truth``, mono8 ground truth on /ground_truth."""
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    Image_ = STORE.types["sensor_msgs/msg/Image"]
    Compressed = STORE.types["sensor_msgs/msg/CompressedImage"]
    String = STORE.types["std_msgs/msg/String"]
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        msgtype = Compressed.__msgtype__ if compressed else Image_.__msgtype__
        camera = writer.add_connection("/camera/image_raw", msgtype, typestore=STORE)
        other = writer.add_connection("/note", String.__msgtype__, typestore=STORE)
        if truth:
            labels = writer.add_connection("/ground_truth", Image_.__msgtype__, typestore=STORE)
        for index in range(FRAMES):
            rgb = camera_frame(index)
            if compressed:
                data = np.frombuffer(encode_compressed(rgb, "png"), np.uint8)
                message = Compressed(header=header(index), format="png", data=data)
            else:
                data = rgb.reshape(-1)[: -1 if index == broken else None]
                message = Image_(header(index), 48, 80, "rgb8", 0, 240, data)
            timestamp = 10**12 + index * PERIOD_NS
            writer.write(camera, timestamp, STORE.serialize_cdr(message, msgtype))
            note = STORE.serialize_cdr(String(data="x"), String.__msgtype__)
            writer.write(other, timestamp + 1, note)
            if truth:  # the bright square of camera_frame is the "anomaly"
                label = (camera_frame(index)[..., 2] == 200).astype(np.uint8).reshape(-1)
                truth_image = Image_(header(index), 48, 80, "mono8", 0, 80, label)
                data = STORE.serialize_cdr(truth_image, Image_.__msgtype__)
                writer.write(labels, timestamp + 2, data)


def read_topics(path: Path) -> dict[str, list[tuple[int, object]]]:
    """topic -> [(bag time, message)], read through the definitions the bag stores (the
    object list's type is in no distro's typestore)."""
    found: dict[str, list[tuple[int, object]]] = {}
    with open_bag(path) as reader:
        for connection, timestamp, raw in reader.messages():
            message = reader.deserialize(raw, connection.msgtype)
            found.setdefault(connection.topic, []).append((timestamp, message))
    return found


def command(*argv: str) -> int:
    """`anomaly-seg bag ...` through the command module's own parser."""
    parser = argparse.ArgumentParser()
    bag_command.register(parser.add_subparsers())
    args = parser.parse_args(["bag", *argv])
    return args.func(args)


@pytest.mark.parametrize(("source", "target"), [("mcap", "sqlite3"), ("sqlite3", "mcap")])
def test_bag_run_writes_one_result_per_frame_with_the_input_stamps(
    tiny_model, tmp_path, source: str, target: str
) -> None:
    write_bag(tmp_path / "in", source)
    detector = Detector.from_path(tiny_model, backend="onnxruntime")
    report = run_bag(detector, tmp_path / "in", tmp_path / "out", storage=target, progress=False)
    assert (report.frames_in, report.frames_out, report.complete) == (FRAMES, FRAMES, True)
    written = read_topics(tmp_path / "out")
    original = read_topics(tmp_path / "in")["/camera/image_raw"]
    objects = [
        f"/anomaly_seg_detector/{n}" for n in default_outputs() if n not in OUTPUT_TOPIC_NAMES
    ]
    assert "/anomaly_seg_detector/obstacle_points" in objects
    # /note is not copied; the object topics exist without CameraInfo (boxes, no position)
    assert sorted(written) == sorted([*TOPICS, *objects, "/camera/image_raw"])
    for topic in objects:
        assert [t for t, _ in written[topic]] == [t for t, _ in original], topic
    for topic in [*TOPICS, "/camera/image_raw"]:
        assert [t for t, _ in written[topic]] == [t for t, _ in original], topic
        stamps = [(m.header.stamp.sec, m.header.stamp.nanosec) for _, m in written[topic]]
        assert stamps == [(500 + i, 11 * i) for i in range(FRAMES)], topic
    copied = written["/camera/image_raw"][3][1]
    np.testing.assert_array_equal(copied.data, original[3][1].data)
    labels = written["/anomaly_seg_detector/labels"][3][1]
    expected = detector.detect(camera_frame(3)).labels
    np.testing.assert_array_equal(labels.data.reshape(48, 80), expected)
    score = written["/anomaly_seg_detector/anomaly_score"][3][1]
    assert (score.encoding, score.step) == ("32FC1", 80 * 4)


def test_bag_run_command_on_compressed_input_and_chosen_outputs(tiny_model, tmp_path) -> None:
    write_bag(tmp_path / "in", "mcap", compressed=True)
    code = command(
        "run", str(tmp_path / "in"), str(tmp_path / "out"), "--model", str(tiny_model),
        "--storage", "sqlite3", "--outputs", "labels", "anomaly_mask", "--no-progress",
        "--threshold=-1e9",
    )  # fmt: skip
    assert code == 0
    written = read_topics(tmp_path / "out")
    assert len(written["/anomaly_seg_detector/labels"]) == FRAMES
    assert "/anomaly_seg_detector/overlay" not in written
    masks = [m.data for _, m in written["/anomaly_seg_detector/anomaly_mask"]]
    assert all((mask == 255).all() for mask in masks)  # --threshold reached the Detector


def test_bag_run_reports_malformed_frames_and_still_copies_them(tiny_model, tmp_path) -> None:
    write_bag(tmp_path / "in", "sqlite3", broken=2)
    code = command(
        "run", str(tmp_path / "in"), str(tmp_path / "out"), "--model", str(tiny_model),
        "--no-progress", "--no-objects",
    )  # fmt: skip
    assert code == 1  # not every frame produced a result
    written = read_topics(tmp_path / "out")
    assert len(written["/camera/image_raw"]) == FRAMES
    assert len(written["/anomaly_seg_detector/labels"]) == FRAMES - 1
    assert sorted(written) == sorted([*TOPICS, "/camera/image_raw"])  # --no-objects


def test_bag_run_needs_an_existing_image_topic(tiny_model, tmp_path) -> None:
    write_bag(tmp_path / "in", "mcap")
    detector = Detector.from_path(tiny_model, backend="onnxruntime")
    with pytest.raises(ConfigError, match="/camera/image_raw"):
        run_bag(detector, tmp_path / "in", tmp_path / "out", topic="/note", progress=False)


def test_bag_evaluate_pairs_run_output_with_ground_truth(tiny_model, tmp_path) -> None:
    write_bag(tmp_path / "in", "mcap", truth=True)
    run = ("run", str(tmp_path / "in"), str(tmp_path / "out"), "--model", str(tiny_model))
    assert command(*run, "--topic", "/camera/image_raw", "--no-progress") == 0
    code = command(
        "evaluate", str(tmp_path / "out"), str(tmp_path / "report"),
        "--label-topic", "/ground_truth", "--label-bag", str(tmp_path / "in"), "--no-progress",
    )  # fmt: skip
    assert code == 0
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert results["settings"]["frames"] == FRAMES
    assert (tmp_path / "report" / "timeline.png").stat().st_size > 0


PLAY = (
    "import argparse, sys\n"
    "from anomaly_seg_ros.commands import bag\n"
    "parser = argparse.ArgumentParser(); bag.register(parser.add_subparsers())\n"
    "args = parser.parse_args(['bag', *sys.argv[1:]]); sys.exit(args.func(args))\n"
)


def test_bag_play_publishes_every_frame_at_the_scaled_rate(ros_client, tmp_path) -> None:
    write_bag(tmp_path / "in", "mcap")
    arrivals: list[tuple[float, Image]] = []
    lock = threading.Lock()

    def store(message: Image) -> None:
        with lock:
            arrivals.append((time.monotonic(), message))

    topic = f"/played_{tmp_path.name}"
    play_options = ("--rate", "0.1", "--remap", topic, "--wait-for-subscriber", "20")
    subscription = ros_client.node.create_subscription(Image, topic, store, 100)
    try:
        run = subprocess.run(
            [sys.executable, "-c", PLAY, "play", str(tmp_path / "in"), *play_options],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        ros_client.wait_for(lambda: len(arrivals) == FRAMES, 5.0, "played frames")
    finally:
        ros_client.node.destroy_subscription(subscription)
    stamps = [(m.header.stamp.sec, m.header.stamp.nanosec) for _, m in arrivals]
    assert stamps == [(500 + i, 11 * i) for i in range(FRAMES)]
    span = arrivals[-1][0] - arrivals[0][0]
    # 3.0 s at rate 0.1 (0.3 s at rate 1, 1.5 s at 0.2, 6 s at 0.05): a slow rate keeps the
    # margin for arrival jitter on a loaded machine (0.5 s seen with two training jobs)
    # well inside the gap to the neighbouring rates.
    assert span == pytest.approx((FRAMES - 1) * PERIOD_NS * 1e-9 / 0.1, abs=0.75)
    np.testing.assert_array_equal(
        np.frombuffer(arrivals[0][1].data, np.uint8).reshape(48, 80, 3), camera_frame(0)
    )


def test_bag_play_skips_a_corrupt_message_and_goes_on(ros_client, tmp_path) -> None:
    write_bag(tmp_path / "in", "mcap")
    damaged = tmp_path / "damaged"
    with Reader(tmp_path / "in") as reader, Writer(damaged, version=8) as writer:
        connections = {}
        for connection, timestamp, raw in reader.messages():
            if connection.topic not in connections:
                connections[connection.topic] = writer.add_connection(
                    connection.topic, connection.msgtype, typestore=STORE
                )
            if connection.topic == "/camera/image_raw" and timestamp == 10**12 + 2 * PERIOD_NS:
                raw = raw[: len(raw) // 2]  # a cut message, 3rd of 7
            writer.write(connections[connection.topic], timestamp, raw)
    arrivals: list[Image] = []
    topic = f"/played_{tmp_path.name}"
    subscription = ros_client.node.create_subscription(Image, topic, arrivals.append, 100)
    try:
        run = subprocess.run(
            [sys.executable, "-c", PLAY, "play", str(damaged), "--rate", "0", "--remap", topic,
             "--wait-for-subscriber", "20"],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        ros_client.wait_for(lambda: len(arrivals) == FRAMES - 1, 5.0, "played frames")
    finally:
        ros_client.node.destroy_subscription(subscription)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "not published: undeserializable" in run.stderr
    assert [m.header.stamp.sec for m in arrivals] == [500 + i for i in range(FRAMES) if i != 2]


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (("run", "IN", "OUT", "--prefix", "bad name!"), "--prefix 'bad name!' is not a valid"),
        (("evaluate", "IN", "OUT", "--stamp-tolerance", "-1"), "--stamp-tolerance must be >= 0"),
        (("evaluate", "IN", "OUT", "--stamp-tolerance", "nan"), "--stamp-tolerance must be"),
        (("play", "IN", "--rate", "nan"), "--rate must be >= 0"),
        (("play", "IN", "--rate", "inf"), "--rate must be >= 0"),
        (("play", "IN", "--remap", "/a b"), "--remap '/a b' is not a valid"),
    ],
)
def test_bag_options_out_of_range_are_one_clear_error(tmp_path, arguments, problem) -> None:
    write_bag(tmp_path / "in", "mcap")
    paths = {"IN": str(tmp_path / "in"), "OUT": str(tmp_path / "out")}
    with pytest.raises(ConfigError, match=problem):
        command(*(paths.get(argument, argument) for argument in arguments))
    assert not (tmp_path / "out").exists()
