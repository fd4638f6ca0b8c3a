"""Fleet evaluation on a real local Ray cluster (2 CPUs, one per test module) and real bags.

The merged figures are checked against one ``bag evaluate`` of a bag holding the same
frames in the same order: pixel metrics, object and component figures to the last digit.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from test_bag_evaluation import IMAGE, START_NS, TYPESTORE, _image

from anomaly_seg_ros.cli import main
from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.bag import evaluate_bag
from anomaly_seg_ros.evaluation.fleet import check_reachable, evaluate_fleet
from anomaly_seg_ros.evaluation.fleet_inputs import find_bags
from anomaly_seg_ros.evaluation.fleet_worker import FleetSettings
from anomaly_seg_ros.io.bags import open_bag, read_topics
from anomaly_seg_ros.io.messages import float_image, label_image, stamp_ns
from anomaly_seg_ros.pipeline.postprocess import anomaly_mask

ray = pytest.importorskip("ray")

SCORE, LABEL = "/anomaly_seg_detector/anomaly_score", "/ground_truth"
SHAPE = (64, 96)


@pytest.fixture(scope="module")
def local_cluster():
    """One local Ray cluster of 2 CPUs for the whole module (a start costs seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def write_bag(path, messages, storage=StoragePlugin.SQLITE3):
    """messages: (topic, bag time ns, Image) in recording order."""
    with Writer(path, version=9, storage_plugin=storage) as writer:
        connections = {}
        for topic, stamp, message in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(
                    topic, IMAGE.__msgtype__, typestore=TYPESTORE
                )
            writer.write(
                connections[topic], stamp, TYPESTORE.serialize_cdr(message, IMAGE.__msgtype__)
            )


def frame_messages(rng, first, count, encoding="32FC1"):
    """Score and label messages of ``count`` frames with stamps from frame ``first`` on."""
    messages = []
    for index in range(first, first + count):
        stamp = START_NS + index * 100_000_000
        label = np.zeros(SHAPE, np.uint8)
        top, left = 15 + index % 7, 10 + 3 * index % 40
        label[top : top + 25, left : left + 30 + index % 9] = 1
        label[:4] = 255
        score = rng.normal(size=SHAPE).astype(np.float32) + 2.2 * (label == 1)
        score[label == 1] -= 1.5 * (index % 3 == 0)  # some frames much harder
        score = score.astype(np.float32)
        if encoding != "32FC1":
            score = (score * 1000).astype(np.float32).view(np.uint16)[:, : SHAPE[1]]
        messages.append((SCORE, stamp, _image(stamp, score, encoding)))
        messages.append((LABEL, stamp + 7, _image(stamp, label, "mono8")))
    return messages


@pytest.fixture(scope="module")
def fleet_bags(tmp_path_factory):
    """Three good bags (sqlite3 and MCAP), a bag with all frames, and two bad bags."""
    root = tmp_path_factory.mktemp("fleet")
    rng = np.random.default_rng(26)
    parts = [frame_messages(rng, first, count) for first, count in ((0, 5), (5, 3), (8, 6))]
    for name, messages, storage in zip(
        ("drive_a", "drive_b", "drive_c"),
        parts,
        (StoragePlugin.SQLITE3, StoragePlugin.MCAP, StoragePlugin.SQLITE3),
    ):
        write_bag(root / "fleet" / name, messages, storage)
    write_bag(root / "all_frames", [m for part in parts for m in part])
    # 16UC1 scores: the decoder refuses every frame (another encoding).
    write_bag(root / "fleet" / "drive_d_16bit", frame_messages(rng, 20, 2, "16UC1"))
    # no ground-truth topic at all
    write_bag(root / "fleet" / "drive_e_no_truth", frame_messages(rng, 30, 2)[::2])
    # a recording cut short: its storage file truncated to half
    write_bag(root / "fleet" / "drive_f_cut", frame_messages(rng, 40, 3))
    storage = next((root / "fleet" / "drive_f_cut").glob("*.db3"))
    storage.write_bytes(storage.read_bytes()[: storage.stat().st_size // 2])
    return root


def test_merged_figures_equal_one_bag_evaluate_and_failures_are_listed(
    local_cluster, fleet_bags, tmp_path
):
    expected = evaluate_bag(
        fleet_bags / "all_frames", tmp_path / "single", label_topic=LABEL, threshold=1.0,
        progress=False,
    )  # fmt: skip
    settings = FleetSettings(label_topic=LABEL, threshold=1.0)
    bags = find_bags([fleet_bags / "fleet"])
    assert [bag.name for bag in bags] == [
        "drive_a", "drive_b", "drive_c", "drive_d_16bit", "drive_e_no_truth", "drive_f_cut"
    ]  # fmt: skip
    cache = tmp_path / "cache"
    fleet = evaluate_fleet(bags, tmp_path / "report", settings, cache_dir=cache, progress=False)

    assert sorted(fleet.states) == ["drive_a", "drive_b", "drive_c"]
    reasons = {failure.name: failure.reason for failure in fleet.failures}
    assert "32FC1" in reasons["drive_d_16bit"] and "no frame paired" in reasons["drive_d_16bit"]
    assert LABEL in reasons["drive_e_no_truth"]
    assert "cannot read bag" in reasons["drive_f_cut"]
    assert not fleet.complete
    got, want = fleet.result.scores["anomaly_score"], expected.scores["anomaly_score"]
    assert got.pixel == want.pixel  # exact metrics: every digit
    assert got.objects == want.objects
    assert got.component_threshold == want.component_threshold
    assert got.component == want.component
    assert got.component.num_gt_instances == 14
    assert [f.average_precision for f in got.frames] == [f.average_precision for f in want.frames]
    assert fleet.result.settings["frames_with_label"] == 14
    # The node's mask against the ground truth: the confusion of every paired frame.
    expected_confusion = np.zeros((3, 3), np.int64)
    with open_bag(fleet_bags / "all_frames") as reader:
        messages = {
            (topic, stamp_ns(message)): message
            for topic, _, message in read_topics(reader, [SCORE, LABEL])
        }
    for (topic, stamp), message in messages.items():
        if topic == SCORE:
            mask = anomaly_mask(float_image(message), 1.0, 0)
            label = label_image(messages[(LABEL, stamp)])
            truth = np.where(label == 255, 2, label)
            np.add.at(expected_confusion, (truth, mask.astype(int)), 1)
    assert np.array_equal(fleet.mask.confusion, expected_confusion)

    report = tmp_path / "report"
    text = (report / "results.md").read_text()
    assert text.startswith("# Fleet evaluation: 3 of 6 bags evaluated (**INCOMPLETE**)")
    assert "drive_d_16bit" in text and "## Worst bags (AP)" in text
    assert "## The node's mask against the ground truth" in text
    document = json.loads((report / "fleet.json").read_text())
    assert document["bags_evaluated"] == 3 and document["bags_total"] == 6
    assert [row["bag"] for row in document["bags"]] == ["drive_a", "drive_b", "drive_c"]
    assert all(row["seconds"] > 0 and row["peak_rss_mb"] > 0 for row in document["bags"])
    results = json.loads((report / "results.json").read_text())
    assert results["settings"]["complete"] is False
    gallery = sorted(path.name for path in (report / "gallery").iterdir())
    assert len(gallery) == 8 and gallery[0].startswith("best_01_drive_")
    # worst frame of the fleet = the lowest per-frame AP of the single bag
    worst_ap = min(f.average_precision for f in want.frames)
    worst = next(f for f in got.frames if f.average_precision == worst_ap).frame
    assert f"worst_01_{worst.replace(':', '_')}.png" in gallery

    # Resume through the command: the good bags come from the cache, the same figures;
    # exit 3 as two bags still fail.
    code = main([
        "fleet", "evaluate", str(fleet_bags / "fleet" / "drive_*"), str(tmp_path / "report2"),
        "--label-topic", LABEL, "--threshold", "1.0", "--cache", str(cache), "--no-progress",
    ])  # fmt: skip
    assert code == 3
    again = json.loads((tmp_path / "report2" / "fleet.json").read_text())
    assert [row["cached"] for row in again["bags"]] == [True, True, True]
    again_results = json.loads((tmp_path / "report2" / "results.json").read_text())
    assert again_results["scores"] == results["scores"]
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no partial files


def test_a_killed_worker_fails_its_bag_and_the_run_goes_on(local_cluster, fleet_bags):
    from anomaly_seg_ros.evaluation.fleet import _Pool, _run_tasks

    settings = FleetSettings(label_topic=LABEL, threshold=1.0)
    pool = _Pool(ray, 2, settings, None, 0.0, None)
    pid = ray.get(pool.actors[0].describe.remote()).split()[0].split(":")[1]
    os.kill(int(pid), 9)  # the worker process dies, as under the OOM killer
    results, read_by = {}, {}

    def done(name, value, index):
        results[name], read_by[name] = value, index

    paths = {n: str(fleet_bags / "fleet" / n) for n in ("drive_a", "drive_b", "drive_c")}
    _run_tasks(pool, [(n, "read", (p,), None) for n, p in paths.items()], done, lambda: None)
    assert "worker died" in results["drive_a"].reason
    assert results["drive_b"].counts["frames_with_label"] == 3
    assert results["drive_c"].counts["frames_with_label"] == 6
    assert pool.replaced == 1
    # Pass 2 goes to the worker holding the bag's maps; elsewhere the bag is read again.
    other = 1 - read_by["drive_c"]
    jobs = [
        ("drive_b", "details", (paths["drive_b"], 1.0, [0]), read_by["drive_b"]),
        ("drive_c", "details", (paths["drive_c"], 1.0, []), other),
    ]
    _run_tasks(pool, jobs, done, lambda: None)
    assert results["drive_b"].read_again is False and list(results["drive_b"].panels) == [0]
    assert results["drive_c"].read_again is True and read_by["drive_c"] == other


def test_nothing_evaluated_exits_1_and_writes_no_report(
    local_cluster, fleet_bags, tiny_model, tmp_path, caplog
):
    code = main([
        "fleet", "evaluate", str(fleet_bags / "fleet" / "drive_d_16bit"), str(tmp_path / "r"),
        "--label-topic", LABEL, "--no-progress",
    ])  # fmt: skip
    assert code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "drive_d_16bit not evaluated" in errors[0] and "32FC1" in errors[0]
    assert errors[-1] == "none of the 1 bags was evaluated (the reasons are listed above)"
    assert not (tmp_path / "r").exists()
    # A model the workers cannot load: one line, before any bag.
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    shutil.copy(tiny_model.with_suffix(".json"), tmp_path / "broken.json")
    caplog.clear()
    code = main([
        "fleet", "evaluate", str(fleet_bags / "fleet" / "drive_a"), str(tmp_path / "r"),
        "--label-topic", LABEL, "--model", str(tmp_path / "broken.onnx"), "--no-progress",
    ])  # fmt: skip
    assert code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].startswith("the workers could not start:"), errors
    assert not (tmp_path / "r").exists()


def test_bad_inputs_say_one_line_and_exit_non_zero(fleet_bags, tmp_path, caplog):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        str(empty): "holds no bags",
        str(tmp_path / "*.nothing"): "matches nothing",
    }
    for argument, message in cases.items():
        caplog.clear()
        code = main(["fleet", "evaluate", argument, str(tmp_path / "r"), "--label-topic", LABEL])
        assert code == 1
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1 and message in errors[0]
    twin = tmp_path / "other" / "drive_a"
    write_bag(twin, frame_messages(np.random.default_rng(0), 0, 1))
    with pytest.raises(InputError, match="two bags are named drive_a"):
        find_bags([fleet_bags / "fleet" / "drive_a", twin])
    with pytest.raises(InputError, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:9"):
        check_reachable("127.0.0.1:9", timeout=1.0)
    caplog.clear()
    code = main([
        "fleet", "evaluate", str(fleet_bags / "fleet" / "drive_a"), str(tmp_path / "r"),
        "--label-topic", LABEL, "--address", "127.0.0.1:9", "--no-progress",
    ])  # fmt: skip
    assert code == 1
    assert "cannot reach the Ray cluster" in caplog.records[-1].getMessage()
