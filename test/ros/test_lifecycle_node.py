"""The managed node driven through its real lifecycle services over DDS."""

from __future__ import annotations

import os
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from ros_harness import NodeProcess, Recorder, RosClient, camera_frame
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from anomaly_seg_ros.ros.messages import array_to_message
from anomaly_seg_ros.ros.session import input_qos

MODULE = "anomaly_seg_ros.ros.lifecycle_node"


class ManagedNode:
    """A lifecycle node process, its lifecycle service clients, a camera and a recorder."""

    def __init__(self, client: RosClient, parameters: dict[str, object], name: str) -> None:
        self.client = client
        self.namespace = f"/lc{os.getpid()}_{name}"
        self.process = NodeProcess(parameters, self.namespace, module=MODULE)
        base = f"{self.namespace}/anomaly_seg_detector"
        self.change = client.node.create_client(ChangeState, f"{base}/change_state")
        self.get = client.node.create_client(GetState, f"{base}/get_state")
        self.camera = client.node.create_publisher(
            Image, f"{self.namespace}/image", input_qos("reliable", 10)
        )
        self.recorder = Recorder(client, self.namespace, ("labels",))
        self.statuses: list[DiagnosticStatus] = []
        self.diagnostics = client.node.create_subscription(
            DiagnosticArray, "/diagnostics", lambda array: self.statuses.extend(array.status), 10
        )
        assert self.change.wait_for_service(timeout_sec=60.0), self.process.stop()

    def diagnostic_messages(self) -> list[str]:
        mine = f"{self.namespace}/anomaly_seg"
        return [s.message for s in list(self.statuses) if s.name.startswith(mine)]

    def _call(self, service: object, request: object) -> object:
        future = service.call_async(request)
        self.client.wait_for(future.done, 60.0, f"{service.srv_name}")
        return future.result()

    def state(self) -> int:
        return self._call(self.get, GetState.Request()).current_state.id

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return self._call(self.change, request).success

    def output_publishers(self) -> int:
        return self.recorder.subscriptions[0].get_publisher_count()

    def frame_gets_through(self, index: int, timeout: float) -> bool:
        before = self.recorder.count("labels")
        header = Header(frame_id="cam")
        header.stamp.sec = index
        self.camera.publish(array_to_message(camera_frame(index), "rgb8", header))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.recorder.count("labels") > before:
                return True
            time.sleep(0.02)
        return False

    def close(self) -> int:
        code = self.process.stop()
        self.recorder.close()
        for entity in (self.change, self.get):
            self.client.node.destroy_client(entity)
        self.client.node.destroy_publisher(self.camera)
        self.client.node.destroy_subscription(self.diagnostics)
        return code


def test_configure_activate_deactivate_cleanup_shutdown(tiny_model, ros_client) -> None:
    node = ManagedNode(ros_client, {"model_path": tiny_model, "qos_profile": "reliable"}, "a")
    try:
        assert node.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert node.camera.get_subscription_count() == 0 and node.output_publishers() == 0

        assert node.transition(Transition.TRANSITION_CONFIGURE)
        assert node.state() == State.PRIMARY_STATE_INACTIVE
        ros_client.wait_for(lambda: node.output_publishers() == 1, 10.0, "output publishers")
        assert node.camera.get_subscription_count() == 0  # not subscribed until active
        ros_client.wait_for(  # /diagnostics says why nothing comes
            lambda: any(m.startswith("inactive") for m in node.diagnostic_messages()),
            10.0,
            "inactive diagnostics",
        )

        assert node.transition(Transition.TRANSITION_ACTIVATE)
        assert node.state() == State.PRIMARY_STATE_ACTIVE
        ros_client.wait_for(lambda: node.camera.get_subscription_count() == 1, 10.0, "input")
        assert node.frame_gets_through(1, 20.0)

        assert node.transition(Transition.TRANSITION_DEACTIVATE)
        assert node.state() == State.PRIMARY_STATE_INACTIVE
        ros_client.wait_for(lambda: node.camera.get_subscription_count() == 0, 10.0, "unsub")
        assert not node.frame_gets_through(2, 1.0)

        assert node.transition(Transition.TRANSITION_CLEANUP)
        assert node.state() == State.PRIMARY_STATE_UNCONFIGURED
        ros_client.wait_for(lambda: node.output_publishers() == 0, 10.0, "publishers gone")

        # A second round loads the model again.
        assert node.transition(Transition.TRANSITION_CONFIGURE)
        assert node.transition(Transition.TRANSITION_ACTIVATE)
        ros_client.wait_for(lambda: node.camera.get_subscription_count() == 1, 10.0, "input")
        assert node.frame_gets_through(3, 20.0)

        assert node.transition(Transition.TRANSITION_ACTIVE_SHUTDOWN)
        node.process.process.wait(timeout=15)  # the shutdown transition ends the process
    finally:
        code = node.close()
    assert code == 0, node.process.output
    output = node.process.output
    assert output.count("detector closed") == 2, output  # cleanup, then shutdown
    assert "stopped cleanly" in output


def test_configure_fails_on_a_missing_model_and_the_node_stays(tmp_path, ros_client) -> None:
    missing = tmp_path / "absent.onnx"
    node = ManagedNode(ros_client, {"model_path": missing}, "b")
    try:
        assert not node.transition(Transition.TRANSITION_CONFIGURE)
        assert node.state() == State.PRIMARY_STATE_UNCONFIGURED
    finally:
        code = node.close()  # SIGINT while unconfigured
    assert code == 0, node.process.output
    assert f"configure failed: model_path {missing} does not exist" in node.process.output


def test_model_path_corrected_while_unconfigured_then_configure_succeeds(
    tmp_path, tiny_model, ros_client
) -> None:
    missing = tmp_path / "absent.onnx"
    node = ManagedNode(ros_client, {"model_path": missing, "qos_profile": "reliable"}, "c")
    setter = ros_client.node.create_client(
        SetParameters, f"{node.namespace}/anomaly_seg_detector/set_parameters"
    )

    def set_model(path: object) -> tuple[bool, str]:
        request = SetParameters.Request(
            parameters=[Parameter("model_path", value=str(path)).to_parameter_msg()]
        )
        (result,) = node._call(setter, request).results
        return result.successful, result.reason

    try:
        assert setter.wait_for_service(timeout_sec=10.0)
        assert not node.transition(Transition.TRANSITION_CONFIGURE)
        assert node.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert set_model(tiny_model) == (True, "")  # unconfigured: start-up values change
        assert node.transition(Transition.TRANSITION_CONFIGURE)
        # configured: refused with the way out
        ok, reason = set_model(missing)
        assert not ok and "model_path" in reason and "cleanup" in reason
        assert node.transition(Transition.TRANSITION_ACTIVATE)
        ros_client.wait_for(lambda: node.camera.get_subscription_count() == 1, 10.0, "input")
        assert node.frame_gets_through(1, 20.0)
    finally:
        ros_client.node.destroy_client(setter)
        code = node.close()
    assert code == 0, node.process.output
    assert f"configure failed: model_path {missing} does not exist" in node.process.output


def test_autostart_configures_and_activates_the_lifecycle_executable(tiny_model, ros_client):
    parameters = {"model_path": tiny_model, "qos_profile": "reliable", "autostart": True}
    node = ManagedNode(ros_client, parameters, "d")
    try:
        ros_client.wait_for(
            lambda: node.state() == State.PRIMARY_STATE_ACTIVE, 60.0, "autostart active"
        )
        ros_client.wait_for(lambda: node.camera.get_subscription_count() == 1, 10.0, "input")
        assert node.frame_gets_through(1, 20.0)
    finally:
        code = node.close()
    assert code == 0, node.process.output
