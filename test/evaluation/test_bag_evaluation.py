"""Bag evaluation on real rosbag2 files written with rosbags: pairing, counts, metrics."""

import json

import numpy as np
import pytest
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore

from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.errors import InputError, OutputError
from anomaly_seg_ros.evaluation.bag import evaluate_bag
from anomaly_seg_ros.evaluation.pairing import LabelIndex
from anomaly_seg_ros.evaluation.pixel_metrics import ExactPixelEvaluator
from anomaly_seg_ros.io.messages import float_image

TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
IMAGE = TYPESTORE.types["sensor_msgs/msg/Image"]
HEADER = TYPESTORE.types["std_msgs/msg/Header"]
TIME = TYPESTORE.types["builtin_interfaces/msg/Time"]
START_NS = 1_700_000_000 * 10**9


def _image(stamp, array, encoding, big_endian=False, padding=0):
    array = np.ascontiguousarray(array)
    if big_endian:
        array = array.astype(array.dtype.newbyteorder(">"))
    height, width = array.shape[:2]
    row_bytes = array.strides[0]
    rows = np.zeros((height, row_bytes + padding), np.uint8)
    rows[:, :row_bytes] = array.view(np.uint8).reshape(height, row_bytes)
    header = HEADER(stamp=TIME(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="camera")
    return IMAGE(
        header=header,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(big_endian),
        step=row_bytes + padding,
        data=rows.ravel(),
    )


def _write_bag(path, messages):
    """messages: (topic, stamp_ns, Image) in recording order."""
    with Writer(path, version=9) as writer:
        connections = {}
        for topic, stamp, message in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(
                    topic, IMAGE.__msgtype__, typestore=TYPESTORE
                )
            data = TYPESTORE.serialize_cdr(message, IMAGE.__msgtype__)
            writer.write(connections[topic], stamp, data)


def _frame(rng, index, shape=(40, 60)):
    label = np.zeros(shape, np.uint8)
    label[10 : 20 + index, 15 : 30 + index] = 1
    label[:3] = 255
    score = (rng.normal(size=shape) + 1.5 * (label == 1)).astype(np.float32)
    return score, label


def test_output_bag_pairs_by_stamp_and_counts_unpaired(tmp_path):
    rng = np.random.default_rng(0)
    score_topic, label_topic = "/anomaly_seg_detector/anomaly_score", "/ground_truth"
    messages, expected = [], ExactPixelEvaluator()
    for index in range(8):
        stamp = START_NS + index * 100_000_000
        score, label = _frame(rng, index)
        # One frame big-endian with padded rows, as some recorders write them.
        odd = index == 3
        messages.append(
            (score_topic, stamp, _image(stamp, score, "32FC1", big_endian=odd, padding=8 * odd))
        )
        if index in (0, 1, 3, 4, 5):
            messages.append((label_topic, stamp + 5, _image(stamp, label, "mono8")))
            expected.process(score, label)
    stray = START_NS + 777
    messages.append((label_topic, stray, _image(stray, np.zeros((40, 60), np.uint8), "mono8")))
    bag = tmp_path / "output_bag"
    _write_bag(bag, messages)

    out = tmp_path / "report"
    result = evaluate_bag(bag, out, label_topic=label_topic, threshold=1.0, progress=False)
    settings = result.settings
    assert settings["score_topic"] == score_topic
    assert settings["frames"] == 8 and settings["frames_with_label"] == 5
    assert settings["frames_without_label"] == 3 and settings["labels_without_frame"] == 1
    assert settings["stamps_labels_without_frame"] == [stray]
    without = [START_NS + i * 100_000_000 for i in (2, 6, 7)]
    assert settings["stamps_frames_without_label"] == without
    metrics = result.scores["anomaly_score"].pixel
    assert metrics == expected.evaluate()
    for name in ("timeline.png", "results.json", "results.md", "roc.png", "per_frame_ap.csv"):
        assert (out / name).stat().st_size > 0, name
    text = (out / "results.md").read_text()
    assert "frames in: 8, paired with ground truth: 5, unpaired: 3" in text
    assert "## Objects: anomaly_score" in text and "found-rate" in text
    saved = json.loads((out / "results.json").read_text())
    assert saved["settings"]["frames"] == 8
    objects = saved["scores"]["anomaly_score"]["objects"]
    assert objects["frames"] == 5 and objects["obstacles"] == 5 and objects["threshold"] == 1.0
    assert (out / "objects_by_area.png").stat().st_size > 0
    with pytest.raises(InputError, match="already exists"):
        evaluate_bag(bag, out, label_topic=label_topic, progress=False)


def test_input_bag_with_detector_and_stamp_tolerance(tiny_model, dataset, tmp_path):
    from anomaly_seg_ros.datasets.anomaly import AnomalyDataset

    frames = AnomalyDataset(dataset)
    messages, expected = [], ExactPixelEvaluator()
    config = DetectorConfig(threshold=0.5)
    with Detector.from_path(tiny_model, config, "onnxruntime") as detector:
        for index in range(4):
            rgb, label = frames.read(index)
            stamp = START_NS + index * 50_000_000
            messages.append(("/camera/image_raw", stamp, _image(stamp, rgb, "rgb8")))
            # Labels 1 ms late; the last one 30 ms late, beyond the 5 ms tolerance.
            delay = 30_000_000 if index == 3 else 1_000_000
            messages.append(("/gt", stamp, _image(stamp + delay, label, "mono8")))
            if index < 3:
                expected.process(detector.detect(rgb).score, label)
        bag = tmp_path / "input_bag"
        _write_bag(bag, messages)
        result = evaluate_bag(
            bag,
            tmp_path / "report",
            label_topic="/gt",
            detector=detector,
            stamp_tolerance=0.005,
            progress=False,
        )
    assert result.settings["frames_with_label"] == 3
    assert result.settings["frames_without_label"] == 1
    assert result.settings["labels_without_frame"] == 1
    assert result.scores["max_logit"].pixel == expected.evaluate()
    assert len(list((tmp_path / "report" / "gallery").iterdir())) > 0


def test_timeline_only_without_ground_truth_and_topic_errors(tmp_path):
    rng = np.random.default_rng(1)
    messages = []
    for index in range(3):
        stamp = START_NS + index
        messages.append(("/a/anomaly_score", stamp, _image(stamp, _frame(rng, 0)[0], "32FC1")))
    bag = tmp_path / "bag"
    _write_bag(bag, messages)
    result = evaluate_bag(bag, tmp_path / "out", progress=False)
    assert result.settings["frames"] == 3 and result.settings["frames_without_label"] == 3
    assert (tmp_path / "out" / "timeline.png").stat().st_size > 0
    with pytest.raises(InputError, match="/missing"):
        evaluate_bag(bag, tmp_path / "out2", label_topic="/missing", progress=False)
    with pytest.raises(InputError, match="does not exist"):
        evaluate_bag(tmp_path / "nope", tmp_path / "out3", progress=False)


def test_label_index_pairs_exact_then_nearest_untaken_and_float_image_checks():
    index = LabelIndex(tolerance_ns=10)
    for stamp in (100, 5, 50, 50, 57):  # any order; the second 50 replaces the first
        index.add(stamp, f"label {stamp}")
    assert index.take(50) == (50, "label 50")
    assert index.take(52) == (57, "label 57")  # 50 is taken: the nearest untaken in 10 ns
    assert index.take(53) is None  # nothing untaken within 10 ns
    assert index.take(0) == (5, "label 5")
    assert index.frames_without_label == [53]
    assert index.labels_without_frame == [50, 100]  # the replaced duplicate, the unused
    with pytest.raises(InputError, match="32FC1"):
        float_image(_image(0, np.zeros((2, 2), np.uint8), "mono8"))


def test_bag_evaluate_command(tmp_path, capsys):
    from anomaly_seg_ros.cli import main

    rng = np.random.default_rng(2)
    messages = []
    for index in range(3):
        stamp = START_NS + index * 10**8
        score, label = _frame(rng, index)
        messages.append(("/node/anomaly_score", stamp, _image(stamp, score, "32FC1")))
        messages.append(("/gt", stamp, _image(stamp, label, "mono8")))
    bag = tmp_path / "bag"
    _write_bag(bag, messages)
    out = tmp_path / "report"
    assert (
        main(["bag", "evaluate", str(bag), str(out), "--label-topic", "/gt", "--no-progress"]) == 0
    )
    assert "frames in: 3, paired with ground truth: 3, unpaired: 0" in capsys.readouterr().out
    assert (out / "timeline.png").stat().st_size > 0


def test_output_of_bag_run_with_ground_truth_from_the_input_bag(tiny_model, dataset, tmp_path):
    from anomaly_seg_ros.datasets.anomaly import AnomalyDataset
    from anomaly_seg_ros.io.bag_run import run_bag

    frames = AnomalyDataset(dataset)
    messages, expected = [], ExactPixelEvaluator()
    with Detector.from_path(tiny_model, DetectorConfig(), "onnxruntime") as detector:
        for index in range(3):
            rgb, label = frames.read(index)
            stamp = START_NS + index * 10**8
            messages.append(("/camera/image_raw", stamp, _image(stamp, rgb, "rgb8")))
            if index != 1:
                messages.append(("/gt", stamp + 1, _image(stamp, label, "mono8")))
                expected.process(detector.detect(rgb).score, label)
        input_bag, output_bag = tmp_path / "input", tmp_path / "output"
        _write_bag(input_bag, messages)
        run_bag(detector, input_bag, output_bag, topic="/camera/image_raw", progress=False)
    result = evaluate_bag(
        output_bag, tmp_path / "report", label_topic="/gt", label_bag=input_bag, progress=False
    )
    assert result.settings["score_topic"] == "/anomaly_seg_detector/anomaly_score"
    assert result.settings["image_topic"] == "/camera/image_raw"
    assert result.settings["frames"] == 3 and result.settings["frames_without_label"] == 1
    assert result.scores["anomaly_score"].pixel == expected.evaluate()


def _evaluate_out_with_drive_labels(tmp_path):
    """Scores of the bag ``out``, ground truth and camera of the bag ``drive``."""
    return evaluate_bag(
        tmp_path / "out",
        tmp_path / "report",
        label_topic="/gt",
        label_bag=tmp_path / "drive",
        image_topic="/camera",
        progress=False,
    )


def test_bags_recorded_at_different_times_pair_every_frame(tmp_path):
    """The demo's case: camera and ground truth logged at header times, scores recorded
    later at replay time, so read merged in bag time every label and camera frame comes
    before every score; more frames than the matcher's pending bound must still all pair."""
    rng = np.random.default_rng(3)
    frames = 100  # more than the 64 pending items the old matcher kept
    labels, scores = [], []
    for index in range(frames):
        stamp = START_NS + index * 10**8
        score, label = _frame(rng, index % 5, shape=(12, 16))
        labels.append(("/gt", stamp, _image(stamp, label, "mono8")))
        camera = np.repeat(label[..., None] * 200, 3, axis=2)
        labels.append(("/camera", stamp, _image(stamp, camera, "rgb8")))
        scores.append(("/node/anomaly_score", stamp, _image(stamp, score, "32FC1")))
    # bag times: the label bag at the header stamps, the output bag an hour later
    _write_bag(tmp_path / "drive", labels)
    _write_bag(tmp_path / "out", [(t, s + 3600 * 10**9, m) for t, s, m in scores])
    result = _evaluate_out_with_drive_labels(tmp_path)
    settings = result.settings
    assert settings["frames"] == frames
    assert settings["frames_with_label"] == frames
    assert settings["frames_without_label"] == 0
    assert settings["labels_without_frame"] == 0
    assert len(result.scores["anomaly_score"].frames) == frames
    text = (tmp_path / "report" / "results.md").read_text()
    assert f"frames in: {frames}, paired with ground truth: {frames}, unpaired: 0" in text


def test_stamps_recorded_out_of_order_pair_every_frame(tmp_path):
    """Labels, camera frames and scores each written in their own shuffled stamp order
    (bag times rising, header stamps not): every frame still pairs, and the metrics are
    those of all frames."""
    rng = np.random.default_rng(4)
    frames = 120
    stamps = [START_NS + index * 10**8 for index in range(frames)]
    expected = ExactPixelEvaluator()
    truth, scores = {}, {}
    for index, stamp in enumerate(stamps):
        scores[stamp], truth[stamp] = _frame(rng, index % 5, shape=(12, 16))
        expected.process(scores[stamp], truth[stamp])
    drive = []
    for position, stamp in enumerate(rng.permutation(stamps)):
        drive.append(("/gt", START_NS + position, _image(int(stamp), truth[stamp], "mono8")))
    for position, stamp in enumerate(rng.permutation(stamps)):
        camera = np.repeat(truth[stamp][..., None] * 200, 3, axis=2)
        drive.append(("/camera", START_NS + frames + position, _image(int(stamp), camera, "rgb8")))
    _write_bag(tmp_path / "drive", sorted(drive, key=lambda item: item[1]))
    later = START_NS + 3600 * 10**9
    output = [
        ("/node/anomaly_score", later + position, _image(int(stamp), scores[stamp], "32FC1"))
        for position, stamp in enumerate(rng.permutation(stamps))
    ]
    _write_bag(tmp_path / "out", output)
    result = _evaluate_out_with_drive_labels(tmp_path)
    settings = result.settings
    assert settings["frames"] == settings["frames_with_label"] == frames
    assert settings["frames_without_label"] == settings["labels_without_frame"] == 0
    assert result.scores["anomaly_score"].pixel == expected.evaluate()
    assert sorted(int(name) for name in result.frame_names) == stamps
    assert len(list((tmp_path / "report" / "gallery").iterdir())) == 8


def test_a_failed_run_leaves_no_report_folder(tmp_path):
    rng = np.random.default_rng(5)
    messages = []
    for index in range(4):
        stamp = START_NS + index * 10**8
        score, label = _frame(rng, index)
        if index == 2:
            label = label[:20]  # a label that does not fit its frame: the run stops
        messages.append(("/node/anomaly_score", stamp, _image(stamp, score, "32FC1")))
        messages.append(("/gt", stamp, _image(stamp, label, "mono8")))
    _write_bag(tmp_path / "bag", messages)
    out = tmp_path / "report"
    with pytest.raises(InputError, match="differ in shape"):
        evaluate_bag(tmp_path / "bag", out, label_topic="/gt", progress=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bag"]


def test_full_disk_is_one_clear_error_and_leaves_no_report(tmp_path, small_disk):
    rng = np.random.default_rng(6)
    messages = []
    for index in range(6):  # noise camera images: the gallery alone exceeds 2 MiB
        stamp = START_NS + index * 10**8
        score, label = _frame(rng, index, shape=(256, 512))
        camera = rng.integers(0, 256, (256, 512, 3), dtype=np.uint8)
        messages.append(("/node/anomaly_score", stamp, _image(stamp, score, "32FC1")))
        messages.append(("/gt", stamp, _image(stamp, label, "mono8")))
        messages.append(("/camera", stamp, _image(stamp, camera, "rgb8")))
    _write_bag(tmp_path / "bag", messages)
    report = small_disk / "report"
    with pytest.raises(OutputError, match="no space left") as raised:
        evaluate_bag(tmp_path / "bag", report, label_topic="/gt", progress=False)
    assert "\n" not in str(raised.value)
    assert list(small_disk.iterdir()) in ([], [small_disk / "lost+found"])


def test_nothing_paired_is_an_error_not_a_report_over_zero_frames(tmp_path, caplog):
    from anomaly_seg_ros.cli import main

    rng = np.random.default_rng(3)
    messages = []
    for index in range(3):
        stamp = START_NS + index * 10**8
        score, label = _frame(rng, index)
        messages.append(("/node/anomaly_score", stamp, _image(stamp, score, "32FC1")))
        rgb = np.repeat(label[..., None], 3, axis=2)  # ground truth saved as a colour image
        messages.append(("/gt_rgb", stamp, _image(stamp, rgb, "rgb8")))
        late = stamp + 50_000_000  # 50 ms after its frame
        messages.append(("/gt_late", late, _image(late, label, "mono8")))
    bag = tmp_path / "bag"
    _write_bag(bag, messages)
    for topic, problem in [
        ("/gt_rgb", "none of its 3 messages is a usable label (first: /gt_rgb: ground-truth enc"),
        ("/gt_late", "3 labels, but no stamp within --stamp-tolerance of a frame (nearest 0.050"),
    ]:
        out = tmp_path / topic.strip("/")
        arguments = ["bag", "evaluate", str(bag), str(out), "--label-topic", topic]
        caplog.clear()
        assert main([*arguments, "--no-progress", "--score-topic", "/node/anomaly_score"]) == 1
        error = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
        assert "paired with ground truth" in error and problem in error, error
        assert not out.exists()
    out = tmp_path / "tolerant"
    arguments = ["bag", "evaluate", str(bag), str(out), "--label-topic", "/gt_late"]
    assert main([*arguments, "--no-progress", "--stamp-tolerance", "0.06"]) == 0
