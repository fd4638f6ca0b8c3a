"""End to end on a short synthetic drive bag: CameraInfo, mount and obstacle ground truth
written by the drive, objects from an oracle score bag, scored by ``bag evaluate``."""

import json
import math

import numpy as np
import pytest

from anomaly_seg_ros.evaluation.bag import evaluate_bag
from anomaly_seg_ros.evaluation.bag_objects import camera_from_message
from anomaly_seg_ros.evaluation.ground_objects import GroundObjectEvaluator
from anomaly_seg_ros.evaluation.object_truth import (
    CAMERA_INFO_TOPIC,
    OBSTACLES_TOPIC,
    mount_of,
    obstacles_from_json,
    read_description,
)
from anomaly_seg_ros.io.bags import IMAGE_TYPE, create_bag, open_bag, typestore
from anomaly_seg_ros.io.image import array_to_raw
from anomaly_seg_ros.io.messages import bag_image
from anomaly_seg_ros.objects import ObjectLayer, ObjectSettings
from demo.drive import (
    DriveSpec,
    camera_model,
    camera_mount,
    drive_camera,
    drive_description,
    render_drive,
)
from demo.drive_bag import ANOMALY_TOPIC, FRAME_ID, write_drive_bag

SPEC = DriveSpec(frames=12, height=128, width=256, clip_frames=6, step_m=1.0, seed=3)
SCORE_TOPIC = "/anomaly_seg_detector/anomaly_score"


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drive")
    frames = list(render_drive(SPEC))
    write_drive_bag(frames, folder / "drive_bag", description=drive_description(SPEC))
    return folder, frames


def test_drive_bag_carries_camera_info_mount_and_obstacles(drive):
    folder, frames = drive
    camera = drive_camera(SPEC)
    description = read_description(folder / "drive_bag")
    assert description is not None and mount_of(description) == camera_mount(camera)
    with open_bag(folder / "drive_bag") as reader:
        found = {CAMERA_INFO_TOPIC: [], OBSTACLES_TOPIC: []}
        for connection, _, raw in reader.messages():
            if connection.topic in found:
                found[connection.topic].append(reader.deserialize(raw, connection.msgtype))
    assert len(found[CAMERA_INFO_TOPIC]) == len(frames) == len(found[OBSTACLES_TOPIC])
    info = found[CAMERA_INFO_TOPIC][0]
    assert info.header.frame_id == FRAME_ID
    model = camera_from_message(info)
    np.testing.assert_allclose(model.k, camera_model(camera).k)
    stamp, obstacles = obstacles_from_json(found[OBSTACLES_TOPIC][1].data)
    assert stamp == frames[1].stamp_ns and obstacles == list(frames[1].obstacles)
    # the camera moves 1 m a frame towards static obstacles
    first = frames[0].obstacles[0]
    assert frames[1].obstacles[0].forward_m == pytest.approx(first.forward_m - 1.0)


def test_oracle_masks_put_obstacles_where_the_world_has_them(drive):
    """The ground-truth mask through the object layer: exact geometry, pixel rounding only."""
    _, frames = drive
    camera = drive_camera(SPEC)
    layer = ObjectLayer(ObjectSettings(on_road_only=False, confirm_hits=1), camera_mount(camera))
    layer.set_camera(camera_model(camera))
    evaluator = GroundObjectEvaluator()
    for frame in frames:
        if frame.index and frame.clip != frames[frame.index - 1].clip:
            layer.reset()  # a scene cut: no car jumps like that
        mask = frame.anomaly_label == 1
        evaluator.process(
            layer.process(mask, mask.astype(np.float32), None, frame.stamp_ns), frame.obstacles
        )
    figures = evaluator.evaluate()
    assert figures["false_confirmed"] == 0
    assert figures["found_rate_within_40m"] > 0.9
    # a row of the 128-row image spans d²/(f·h) ≈ 2 % of range at 10 m, 6 % at 30 m
    assert figures["position_error_percent_within_40m"]["median"] < 5.0


def test_bag_evaluate_scores_objects_of_an_output_bag(drive, tmp_path):
    folder, frames = drive
    store = typestore()
    image_class = store.types[IMAGE_TYPE]
    header_class = store.types["std_msgs/msg/Header"]
    time_class = store.types["builtin_interfaces/msg/Time"]
    with create_bag(tmp_path / "output_bag") as writer:
        connection = writer.add_connection(SCORE_TOPIC, IMAGE_TYPE, typestore=store)
        for frame in frames:
            seconds, nanoseconds = divmod(frame.stamp_ns, 10**9)
            header = header_class(stamp=time_class(sec=seconds, nanosec=nanoseconds), frame_id="c")
            score = np.where(frame.anomaly_label == 1, 1.0, -1.0).astype(np.float32)
            message = bag_image(image_class, array_to_raw(score, "32FC1"), header)
            writer.write(connection, frame.stamp_ns, store.serialize_cdr(message, IMAGE_TYPE))
    result = evaluate_bag(
        tmp_path / "output_bag",
        tmp_path / "report",
        label_topic=ANOMALY_TOPIC,
        label_bag=folder / "drive_bag",
        threshold=0.0,
        progress=False,
        object_settings=ObjectSettings(on_road_only=False, confirm_hits=2, confirm_window=3),
    )
    figures = json.loads((tmp_path / "report" / "objects.json").read_text())
    assert (tmp_path / "report" / "birds_eye.png").stat().st_size > 0
    assert "found-rate" in (tmp_path / "report" / "objects.md").read_text()
    assert result.settings["ground_objects"]["frames"] == len(frames)
    assert figures["false_confirmed"] == 0
    # confirmation after 2 hits: the first frame of every scene cannot be found
    assert figures["frames_to_confirm"]["median"] == 1.0
    assert 0.7 < figures["found_rate_within_40m"] < 1.0
    assert math.isfinite(figures["position_error_m"]["median"])


def test_bag_evaluate_runs_objects_with_a_detector_and_its_road_region(
    drive, tiny_model, tmp_path
):
    from anomaly_seg_ros.detector import Detector

    folder, frames = drive
    with Detector.from_path(tiny_model) as detector:
        result = evaluate_bag(
            folder / "drive_bag",
            tmp_path / "report",
            label_topic=ANOMALY_TOPIC,
            image_topic="/camera/image_raw",
            detector=detector,
            progress=False,
        )
    figures = result.settings["ground_objects"]
    assert figures["frames"] == len(frames)
    assert figures["settings"]["on_road_only"] is True
    # every visible obstacle-frame is counted once, whatever the random model finds
    visible = sum(o.visible and o.range_m < 80 for f in frames for o in f.obstacles)
    assert sum(band["obstacles"] for band in figures["by_range"]) == visible


def run_drive(detector, bag, out, **options):
    """``bag run`` of a drive bag's camera topic, every pixel an anomaly (one object over
    the whole image: its contact is the bottom row, at a known ground distance)."""
    from anomaly_seg_ros.io.bag_run import run_bag

    settings = ObjectSettings(on_road_only=False, confirm_hits=1, confirm_window=1)
    return run_bag(
        detector, bag, out, topic="/camera/image_raw", progress=False,
        object_settings=settings, **options,
    )  # fmt: skip


def object_topics(path):
    """topic -> [(bag time, message)] of a bag, read through its stored definitions."""
    found = {}
    with open_bag(path) as reader:
        for connection, timestamp, raw in reader.messages():
            if connection.topic.startswith("/anomaly_seg_detector/o"):
                message = reader.deserialize(raw, connection.msgtype)
                found.setdefault(connection.topic.rsplit("/", 1)[1], []).append(
                    (timestamp, message)
                )
    return found


@pytest.fixture(scope="module")
def all_anomaly_detector(tiny_model):
    from anomaly_seg_ros.config import DetectorConfig
    from anomaly_seg_ros.detector import Detector

    with Detector.from_path(tiny_model, DetectorConfig(threshold=-1e9, min_area=0)) as det:
        yield det


def test_bag_run_writes_placed_objects_with_the_camera_stamps(
    drive, all_anomaly_detector, tmp_path
):
    from anomaly_seg_ros.io.object_bag import cloud_points, object_typestore

    folder, frames = drive
    report = run_drive(all_anomaly_detector, folder / "drive_bag", tmp_path / "out")
    assert report.complete and "/anomaly_seg_detector/obstacle_points" in report.output_topics
    written = object_topics(tmp_path / "out")
    mount = camera_mount(drive_camera(SPEC))
    camera = camera_model(drive_camera(SPEC))
    # the whole-image object's contact: the bottom row's ray onto the ground
    layer = ObjectLayer(ObjectSettings(on_road_only=False, confirm_hits=1), mount)
    layer.set_camera(camera)
    full = np.ones((SPEC.height, SPEC.width), bool)
    expected = layer.process(full, full.astype(np.float32), None, 1).objects[0].ground
    assert expected is not None and 0 < expected.forward_m < 30
    names = ["obstacle_points", "object_markers"]
    names += ["objects"] if object_typestore()[0] is not None else []
    for name in names:
        messages = written[name]
        assert [t for t, _ in messages] == [f.stamp_ns for f in frames], name  # one per frame
        for frame, (_, message) in zip(frames, messages):
            header = message.header if name != "object_markers" else message.markers[0].header
            stamp = header.stamp.sec * 10**9 + header.stamp.nanosec
            assert (stamp, header.frame_id) == (frame.stamp_ns, mount.vehicle_frame), name
    for _, cloud in written["obstacle_points"]:
        assert [f.name for f in cloud.fields] == ["x", "y", "z", "score", "id"]
        points = cloud_points(cloud)
        assert len(points) == cloud.width > 0
        # pixel rounding of the contact row only: the same row, the same ray
        np.testing.assert_allclose(points["x"].mean(), expected.forward_m, rtol=1e-3)
        assert (points["z"] == 0).all() and len(set(points["id"].tolist())) == 1
    ids = [int(cloud_points(c)["id"][0]) for _, c in written["obstacle_points"]]
    assert len(set(ids)) == 1  # the same whole-image object every frame: one track
    first = written["object_markers"][0][1].markers
    assert {m.action for m in first} == {0} and any("m " in m.text for m in first)
    if "objects" in names:
        listed = written["objects"][0][1]
        assert listed.camera_frame_id == FRAME_ID and listed.objects[0].has_position
        assert listed.objects[0].range_m == pytest.approx(expected.range_m, rel=1e-3)


def test_bag_run_without_mount_or_camera_info_writes_unplaced_objects(
    drive, all_anomaly_detector, tmp_path, caplog
):
    from anomaly_seg_ros.io.object_bag import cloud_points

    _, frames = drive
    write_drive_bag(frames, tmp_path / "bare")  # no CameraInfo, no description
    report = run_drive(all_anomaly_detector, tmp_path / "bare", tmp_path / "out")
    assert report.complete
    lines = [r.getMessage() for r in caplog.records if "ground position" in r.getMessage()]
    assert len(lines) == 1 and "camera mount" in lines[0] and "CameraInfo" in lines[0]
    written = object_topics(tmp_path / "out")
    assert len(written["obstacle_points"]) == len(frames)
    assert all(cloud_points(cloud).size == 0 for _, cloud in written["obstacle_points"])
    # confirmed but unplaced: no drawing, a DELETE of its id in both namespaces
    assert {m.action for _, array in written["object_markers"] for m in array.markers} == {2}
    caplog.clear()
    mount = camera_mount(drive_camera(SPEC))
    run_drive(all_anomaly_detector, tmp_path / "bare", tmp_path / "out2", mount=mount)
    lines = [r.getMessage() for r in caplog.records if "ground position" in r.getMessage()]
    assert len(lines) == 1 and "camera mount" not in lines[0] and "/camera/camera_info" in lines[0]


def test_bag_run_with_a_zero_camera_info_warns_once_and_processes_every_frame(
    drive, all_anomaly_detector, tmp_path, caplog
):
    from anomaly_seg_ros.io.object_bag import cloud_points

    _, frames = drive
    description = drive_description(SPEC)
    description["camera"]["k"] = [0.0] * 9
    write_drive_bag(frames, tmp_path / "bad", description=description)
    report = run_drive(all_anomaly_detector, tmp_path / "bad", tmp_path / "out")
    assert report.complete and report.frames_out == len(frames)
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    named = [line for line in lines if "bad CameraInfo on /camera/camera_info" in line]
    assert len(named) == 1 and "focal length" in named[0], lines
    assert not any("no camera intrinsics" in line for line in lines)  # said once, by name
    written = object_topics(tmp_path / "out")
    assert len(written["obstacle_points"]) == len(frames)
    assert all(cloud_points(cloud).size == 0 for _, cloud in written["obstacle_points"])


def test_bag_run_command_takes_the_mount_and_chosen_object_outputs(
    drive, tiny_model, tmp_path, caplog
):
    import argparse
    import shutil

    from anomaly_seg_ros.commands import bag

    folder, frames = drive
    shutil.copytree(folder / "drive_bag", tmp_path / "in")
    (tmp_path / "in" / "description.json").unlink()  # CameraInfo only: the mount is given
    parser = argparse.ArgumentParser()
    bag.register(parser.add_subparsers())
    mount = camera_mount(drive_camera(SPEC))
    x, y, z, roll, pitch, yaw = (
        str(getattr(mount, name)) for name in ("x", "y", "z", "roll", "pitch", "yaw")
    )
    argv = ["bag", "run", str(tmp_path / "in"), str(tmp_path / "out"), "--model",
            str(tiny_model), "--topic", "/camera/image_raw", "--no-progress",
            "--outputs", "anomaly_score", "obstacle_points", "--mount", x, y, z, roll, pitch,
            yaw, "--vehicle-frame", "car"]  # fmt: skip
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    assert not [r for r in caplog.records if "ground position" in r.getMessage()]
    written = object_topics(tmp_path / "out")
    assert sorted(written) == ["obstacle_points"]
    assert [m.header.frame_id for _, m in written["obstacle_points"]] == ["car"] * len(frames)
