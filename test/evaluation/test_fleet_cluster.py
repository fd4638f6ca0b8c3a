"""Fleet evaluation with a model on a simulated two-node Ray cluster (``ray.cluster_utils``).

Two nodes of one CPU each on this machine, joined as an existing cluster (``--address``,
the package shipped as a runtime-env module): the two workers land on different nodes,
the model reaches them through the object store, and the merged figures equal one
``bag evaluate`` with the same model over the same frames.
"""

from __future__ import annotations

import json

import pytest
from test_bag_evaluation import START_NS, _image, _write_bag

from anomaly_seg_ros.cli import main
from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.evaluation.bag import evaluate_bag

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def two_nodes():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster  # joined by the command itself, through --address
    ray.shutdown()
    cluster.shutdown()


def _messages(frames, indices):
    messages = []
    for index in indices:
        rgb, label = frames.read(index)
        stamp = START_NS + index * 50_000_000
        messages.append(("/camera/image_raw", stamp, _image(stamp, rgb, "rgb8")))
        messages.append(("/gt", stamp, _image(stamp, label, "mono8")))
    return messages


def test_two_nodes_with_a_model_equal_one_bag_evaluate(two_nodes, tiny_model, dataset, tmp_path):
    from anomaly_seg_ros.datasets.anomaly import AnomalyDataset

    frames = AnomalyDataset(dataset)
    _write_bag(tmp_path / "bags" / "drive_1", _messages(frames, range(0, 3)))
    _write_bag(tmp_path / "bags" / "drive_2", _messages(frames, range(3, 6)))
    _write_bag(tmp_path / "all", _messages(frames, range(6)))
    config = DetectorConfig(threshold=0.5)
    # One thread, as each worker runs with its one CPU: the same arithmetic.
    with Detector.from_path(tiny_model, config, "onnxruntime", threads=1) as detector:
        expected = evaluate_bag(
            tmp_path / "all", tmp_path / "single", label_topic="/gt", detector=detector,
            progress=False,
        )  # fmt: skip
    params = tmp_path / "params.yaml"
    params.write_text("anomaly_seg_detector:\n  ros__parameters:\n    threshold: 0.5\n")
    code = main([
        "fleet", "evaluate", str(tmp_path / "bags"), str(tmp_path / "report"),
        "--label-topic", "/gt", "--model", str(tiny_model), "--params", str(params),
        "--workers", "2", "--no-progress", "--address", two_nodes.address,
    ])  # fmt: skip
    assert code == 0
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    want = json.loads((tmp_path / "single" / "results.json").read_text())
    got_score, want_score = results["scores"]["max_logit"], want["scores"]["max_logit"]
    assert got_score["pixel"] == want_score["pixel"]
    assert got_score["objects"] == want_score["objects"]
    assert got_score["component"] == want_score["component"]
    assert results["settings"]["bags_evaluated"] == 2 and results["settings"]["complete"]
    assert expected.settings["frames_with_label"] == 6
    fleet = json.loads((tmp_path / "report" / "fleet.json").read_text())
    nodes = {row["worker"].split(" node ")[1] for row in fleet["bags"]}
    assert len(nodes) == 2, fleet["bags"]  # one bag per node
    assert "onnxruntime" in " ".join(fleet["workers"])
