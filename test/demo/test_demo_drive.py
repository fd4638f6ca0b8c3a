"""The demo's synthetic drive and its input bag: no ROS needed."""

import numpy as np
import pytest

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.io.bags import IMAGE_TYPE, open_bag
from anomaly_seg_ros.io.messages import decode_message, label_image, stamp_ns
from demo.drive import DriveSpec, render_drive
from demo.drive_bag import (
    ANOMALY_TOPIC,
    CAMERA_TOPIC,
    FRAME_ID,
    SEMANTIC_TOPIC,
    write_drive_bag,
)

SPEC = DriveSpec(frames=6, height=64, width=128, clip_frames=3, step_m=0.5, fps=20.0)


@pytest.fixture(scope="module")
def frames():
    return list(render_drive(SPEC))


def test_drive_frames_have_stamps_clips_and_ground_truth(frames):
    assert [f.index for f in frames] == list(range(6))
    assert [f.clip for f in frames] == [0, 0, 0, 1, 1, 1]
    assert np.all(np.diff([f.stamp_ns for f in frames]) == 50_000_000)  # 20 Hz
    for frame in frames:
        assert frame.image.shape == (64, 128, 3) and frame.image.dtype == np.uint8
        assert set(np.unique(frame.anomaly_label)) <= {0, 1, 255}
        assert (frame.anomaly_label == 1).any(), "every scene has anomalies in view"
        # Anomalies have no Cityscapes class: void in the semantic ground truth.
        assert np.all(frame.train_ids[frame.anomaly_label == 1] == 255)
        assert set(np.unique(frame.train_ids)) <= set(range(19)) | {255}


def test_camera_moves_through_one_scene_per_clip(frames):
    def difference(a, b):
        return float(np.mean(np.abs(a.image.astype(np.int16) - b.image.astype(np.int16))))

    within = [difference(frames[i], frames[i + 1]) for i in (0, 1, 3, 4)]
    cut = difference(frames[2], frames[3])
    assert min(within) > 0.5, "consecutive frames are not identical"
    assert max(within) < 0.6 * cut, (within, cut)
    # Driving forward, the anomalies grow as the camera approaches them.
    for clip in (frames[:3], frames[3:]):
        areas = [int((f.anomaly_label == 1).sum()) for f in clip]
        assert areas[-1] > areas[0], areas


def test_drive_bag_holds_camera_and_ground_truth_with_identical_headers(frames, tmp_path):
    summary = write_drive_bag(frames, tmp_path / "drive")
    assert summary.frames == 6 and summary.clips == 2
    assert (summary.height, summary.width) == (64, 128)
    topics = {CAMERA_TOPIC: [], ANOMALY_TOPIC: [], SEMANTIC_TOPIC: []}
    with open_bag(tmp_path / "drive") as reader:
        assert {c.topic: c.msgtype for c in reader.connections} == dict.fromkeys(
            topics, IMAGE_TYPE
        )
        for connection, timestamp, raw in reader.messages():
            message = reader.deserialize(raw, connection.msgtype)
            assert message.header.frame_id == FRAME_ID
            assert stamp_ns(message) == timestamp  # bag time = header stamp
            topics[connection.topic].append(message)
    expected_stamps = [f.stamp_ns for f in frames]
    for topic, messages in topics.items():
        assert [stamp_ns(m) for m in messages] == expected_stamps, topic
    assert [m.encoding for m in topics[CAMERA_TOPIC]] == ["rgb8"] * 6
    for frame, camera, anomaly, semantic in zip(frames, *topics.values()):
        np.testing.assert_array_equal(decode_message(camera), frame.image)
        np.testing.assert_array_equal(label_image(anomaly), frame.anomaly_label)
        np.testing.assert_array_equal(label_image(semantic), frame.train_ids)


def test_bad_drive_spec_is_a_config_error():
    with pytest.raises(ConfigError, match="at least 32x32"):
        list(render_drive(DriveSpec(frames=2, height=16, width=128)))
    with pytest.raises(ConfigError, match="frames >= 1"):
        list(render_drive(DriveSpec(frames=0)))
