"""The node publishes exactly the output table's rows (over DDS), and declares exactly
their switches; a row without a publisher or a parameter fails here."""

from __future__ import annotations

import time

from ros_harness import NodeUnderTest

from anomaly_seg_ros.output_table import OUTPUTS
from anomaly_seg_ros.ros.object_messages import message_module
from anomaly_seg_ros.ros.parameters import SPECS, default_values


def test_every_row_has_its_switch_with_the_rows_default() -> None:
    switches = {name for name in SPECS if name.startswith("publish_")}
    assert switches == {o.toggle for o in OUTPUTS}
    defaults = default_values()
    for row in OUTPUTS:
        assert defaults[row.toggle] is row.default, row.toggle
        assert f"~/{row.name}" in SPECS[row.toggle].description, row.toggle


#: Private topics of every lifecycle node (rclpy's, not an output).
LIFECYCLE_TOPICS = {"transition_event"}


def advertised(node: NodeUnderTest) -> dict[str, str]:
    """The node's private topics (``~/<name>``) but rclpy's own, with their message types."""
    prefix = f"{node.namespace}/anomaly_seg_detector/"
    return {
        name[len(prefix) :]: types[0]
        for name, types in node.client.node.get_topic_names_and_types()
        if name.startswith(prefix) and name[len(prefix) :] not in LIFECYCLE_TOPICS
    }


def test_the_node_advertises_exactly_the_tables_topics(tiny_model, start_node) -> None:
    node = start_node({"model_path": tiny_model, "qos_profile": "reliable"})
    # Optional message packages (anomaly_seg_msgs, vision_msgs) may be missing here: the
    # node then says so once and publishes the others.
    missing = {o.name for o in OUTPUTS if message_module(o.msgtype)[0] is None}
    assert not missing & {o.name for o in OUTPUTS if not o.optional}
    expected = {o.name: o.msgtype for o in OUTPUTS if o.name not in missing}
    deadline = time.monotonic() + 20.0
    while advertised(node) != expected and time.monotonic() < deadline:
        time.sleep(0.1)  # discovery of the publishers
    assert advertised(node) == expected
