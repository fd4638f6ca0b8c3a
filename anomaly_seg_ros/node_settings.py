"""The node's settings as a frozen dataclass, without rclpy (``anomaly-seg detect`` reads
the same parameters files and must know every name in them).

:mod:`anomaly_seg_ros.ros.parameters` declares them as ROS parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from anomaly_seg_ros.backends import BACKEND_CHOICES
from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.objects import CameraMount, ObjectSettings
from anomaly_seg_ros.output_table import DEFAULT_PUBLISHED, OUTPUTS, TOGGLES
from anomaly_seg_ros.pipeline.preprocess import MAX_IMAGE_PIXELS

QOS_PROFILES = ("auto", "sensor_data", "reliable")
#: Node parameters of the object layer's settings: ``object_<ObjectSettings field>``.
OBJECT_PREFIX = "object_"


@dataclass(frozen=True)
class NodeSettings:
    """All node parameters, as read at start-up or after a validated run-time change.

    :param model_path: exported ONNX model (or TensorRT engine); empty = bundled demo model.
    :param backend: one of :data:`anomaly_seg_ros.backends.BACKEND_CHOICES`.
    :param sml_stats_path: SML statistics JSON; empty = ``<model>.sml.json`` if present,
        else none (score_type ``sml`` then fails).
    :param engine_cache_dir: TensorRT engine cache folder; empty = beside the ONNX model
        (or the user cache when that folder is not writable).
    :param input_height: expected network input height; 0 = whatever the model has. The
        size is fixed when exporting (static shapes); a model of another size is refused
        at start-up instead of silently running at the wrong resolution.
    :param input_width: expected network input width; 0 = the model's.
    :param host_threads: threads for the host refinement (row strips; results do not
        depend on it); 0 = one per available CPU, at most 8.
    :param build_only: load the model (for TensorRT: build and cache the engine), then
        exit 0 without subscribing: the install step of a car.
    :param input_compressed: subscribe to ``<image>/compressed`` instead of ``image``.
    :param publish: the names of the outputs switched on (:meth:`publishes`); each output
        of :data:`anomaly_seg_ros.output_table.OUTPUTS` is one boolean parameter, its
        ``toggle`` (``publish_labels`` ...: :func:`toggle_values`, :func:`published`).
    :param camera_x: the camera body frame's position in the vehicle frame, metres
        (REP 103: x forward, y left, z up); with ``camera_y``, ``camera_z``.
    :param camera_roll: its orientation, radians, as tf2/URDF ``rpy`` (``R = Rz(yaw)
        Ry(pitch) Rx(roll)``; body frame: x along the optical axis, so all zero = looking
        straight ahead, positive pitch = looking down); with ``camera_pitch``,
        ``camera_yaw``. All six zero = not set: objects get no ground position.
    :param vehicle_frame: frame of the positions, the point cloud and the markers.
    :param qos_profile: input QoS: ``auto`` (the camera's reliability: reliable when every
        publisher of the topic is, else best effort), ``sensor_data`` (best effort) or
        ``reliable``.
    :param qos_depth: input queue depth.
    :param max_image_pixels: larger input images are rejected as malformed; at most
        :data:`anomaly_seg_ros.pipeline.preprocess.MAX_IMAGE_PIXELS` (8192×4096).
    :param diagnostics_period: seconds between ``/diagnostics`` messages.
    :param debug_inference_delay: TEST ONLY: seconds of sleep added to every inference,
        to imitate a slow backend; keep 0 in real use.
    :param detector: the Detector's settings.
    :param objects: the object layer's settings (parameters ``object_<field>``).
    """

    model_path: str = ""
    backend: str = "auto"
    sml_stats_path: str = ""
    engine_cache_dir: str = ""
    input_height: int = 0
    input_width: int = 0
    host_threads: int = 0
    build_only: bool = False
    input_compressed: bool = False
    qos_profile: str = "auto"
    qos_depth: int = 1
    max_image_pixels: int = MAX_IMAGE_PIXELS
    diagnostics_period: float = 1.0
    publish: frozenset[str] = DEFAULT_PUBLISHED
    camera_x: float = 0.0
    camera_y: float = 0.0
    camera_z: float = 0.0
    camera_roll: float = 0.0
    camera_pitch: float = 0.0
    camera_yaw: float = 0.0
    vehicle_frame: str = "base_link"
    debug_inference_delay: float = 0.0
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    objects: ObjectSettings = field(default_factory=ObjectSettings)

    def __post_init__(self) -> None:
        if self.backend not in BACKEND_CHOICES:
            raise ConfigError(
                f"backend {self.backend!r} unknown; valid: {', '.join(BACKEND_CHOICES)}"
            )
        if not 1 <= self.max_image_pixels <= MAX_IMAGE_PIXELS:
            raise ConfigError(
                f"max_image_pixels {self.max_image_pixels} out of range; valid: 1 … "
                f"{MAX_IMAGE_PIXELS} (8192x4096, the largest image anomaly_seg_ros accepts)"
            )
        if self.qos_profile not in QOS_PROFILES:
            raise ConfigError(
                f"qos_profile {self.qos_profile!r} unknown; valid: {', '.join(QOS_PROFILES)}"
            )
        unknown = sorted(set(self.publish) - {output.name for output in OUTPUTS})
        if unknown:
            valid = ", ".join(output.name for output in OUTPUTS)
            raise ConfigError(f"unknown output(s) {unknown} to publish; valid: {valid}")

    def publishes(self, name: str) -> bool:
        """Whether output ``name`` is switched on (its ``publish_*`` parameter)."""
        return name in self.publish

    def camera_mount(self) -> CameraMount | None:
        """The camera's mounting in the vehicle frame; None while all six values are 0
        (not configured: objects are published without ground position)."""
        pose = (
            self.camera_x,
            self.camera_y,
            self.camera_z,
            self.camera_roll,
            self.camera_pitch,
            self.camera_yaw,
        )
        if not any(pose):
            return None
        return CameraMount(*pose, vehicle_frame=self.vehicle_frame)


#: NodeSettings fields that hold settings groups rather than one parameter each.
_GROUPS = ("detector", "objects", "publish")


def toggle_values(publish: frozenset[str]) -> dict[str, bool]:
    """The ``publish_*`` parameters of a set of switched-on outputs, in table order."""
    return {output.toggle: output.name in publish for output in OUTPUTS}


def published(values: Mapping[str, object], current: frozenset[str]) -> frozenset[str]:
    """The outputs switched on after the ``publish_*`` values among ``values``.

    :param values: parameter name -> value; other names are ignored.
    :param current: the outputs switched on before (those without a value keep theirs).
    :raises ConfigError: a ``publish_*`` value that is not a boolean.
    """
    switched = set(current)
    for output in OUTPUTS:
        if output.toggle not in values:
            continue
        value = values[output.toggle]
        if not isinstance(value, bool):
            raise ConfigError(f"{output.toggle} must be true or false, not {value!r}")
        if value:
            switched.add(output.name)
        else:
            switched.discard(output.name)
    return frozenset(switched)


def object_parameter_names() -> tuple[str, ...]:
    """The node parameters of the object layer, ``object_<field>``, in field order."""
    return tuple(OBJECT_PREFIX + f.name for f in fields(ObjectSettings))


def node_parameter_names() -> tuple[str, ...]:
    """Names of the node's own parameters (those that are not Detector settings)."""
    own = tuple(f.name for f in fields(NodeSettings) if f.name not in _GROUPS)
    return own + TOGGLES + object_parameter_names()
