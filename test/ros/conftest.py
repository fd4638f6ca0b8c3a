"""Fixtures of the ROS tests: a tiny exported model, the rclpy client, node processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ros_harness import NodeUnderTest, RosClient


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-weight model (MobileNetV2 x0.35, 64x128 input), exported once."""
    torch = pytest.importorskip("torch")
    from anomaly_seg_ros.networks import create_network
    from anomaly_seg_ros.networks.export import export_onnx

    torch.manual_seed(0)
    network = create_network("mobilenetv2", 19, width_mult=0.35)
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    export_onnx(network, path, input_size=(64, 128), class_names=[f"c{i}" for i in range(19)])
    return path


@pytest.fixture(scope="session")
def ros_client() -> Iterator[RosClient]:
    client = RosClient()
    yield client
    client.close()


@pytest.fixture
def start_node(ros_client: RosClient) -> Iterator[Callable[..., NodeUnderTest]]:
    """Start nodes for one test; each is stopped with SIGINT and must exit with 0."""
    started: list[NodeUnderTest] = []

    def start(parameters: dict[str, object], **options: object) -> NodeUnderTest:
        node = NodeUnderTest(ros_client, parameters, **options)
        started.append(node)
        return node

    yield start
    for node in started:
        code = node.close()
        assert code == 0, f"node did not exit cleanly ({code}):\n{node.process.output}"
