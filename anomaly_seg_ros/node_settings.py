"""The node's settings as a frozen dataclass, without rclpy (``anomaly-seg detect`` reads
the same parameters files and must know every name in them).

:mod:`anomaly_seg_ros.ros.parameters` declares them as ROS parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from anomaly_seg_ros.backends import BACKEND_CHOICES
from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.preprocess import MAX_IMAGE_PIXELS

QOS_PROFILES = ("auto", "sensor_data", "reliable")
PUBLISH_TOGGLES = (
    "publish_labels",
    "publish_labels_color",
    "publish_score",
    "publish_mask",
    "publish_overlay",
)


@dataclass(frozen=True)
class NodeSettings:
    """All node parameters, as read at start-up or after a validated run-time change.

    :param model_path: exported ONNX model (or TensorRT engine); empty = bundled demo model.
    :param backend: one of :data:`anomaly_seg_ros.backends.BACKEND_CHOICES`.
    :param sml_stats_path: SML statistics JSON; empty = none (score_type ``sml`` then fails).
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
    :param publish_labels: publish ``~/labels`` (and likewise the other toggles).
    :param qos_profile: input QoS: ``auto`` (the camera's reliability: reliable when every
        publisher of the topic is, else best effort), ``sensor_data`` (best effort) or
        ``reliable``.
    :param qos_depth: input queue depth.
    :param max_image_pixels: larger input images are rejected as malformed; at most
        :data:`anomaly_seg_ros.preprocess.MAX_IMAGE_PIXELS` (8192×4096).
    :param diagnostics_period: seconds between ``/diagnostics`` messages.
    :param debug_inference_delay: TEST ONLY: seconds of sleep added to every inference,
        to imitate a slow backend; keep 0 in real use.
    :param detector: the Detector's settings.
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
    publish_labels: bool = True
    publish_labels_color: bool = True
    publish_score: bool = True
    publish_mask: bool = True
    publish_overlay: bool = True
    qos_profile: str = "auto"
    qos_depth: int = 1
    max_image_pixels: int = MAX_IMAGE_PIXELS
    diagnostics_period: float = 1.0
    debug_inference_delay: float = 0.0
    detector: DetectorConfig = field(default_factory=DetectorConfig)

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


def node_parameter_names() -> tuple[str, ...]:
    """Names of the node's own parameters (those that are not Detector settings)."""
    return tuple(f.name for f in fields(NodeSettings) if f.name != "detector")
