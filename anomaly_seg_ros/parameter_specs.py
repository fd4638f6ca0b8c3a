"""The node's parameters as data: description, range and whether each changes at run time.

One entry per parameter in :data:`SPECS` (defaults come from the settings dataclasses:
:class:`~anomaly_seg_ros.node_settings.NodeSettings`,
:class:`~anomaly_seg_ros.config.DetectorConfig`,
:class:`~anomaly_seg_ros.objects.ObjectSettings`; the ``publish_*`` switches from
:mod:`anomaly_seg_ros.output_table`). The node's descriptors, its validation
(:func:`range_problems`), ``config/detector.yaml`` and docs/parameters.md are made from
them (:mod:`anomaly_seg_ros.ros.parameters`, :mod:`anomaly_seg_ros.ros.parameter_file`).
Plain data without rclpy, like Autoware's parameter schema files.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields

from anomaly_seg_ros.backends import BACKEND_CHOICES
from anomaly_seg_ros.config import ASPECT_POLICIES, SCORE_TYPES
from anomaly_seg_ros.node_settings import OBJECT_PREFIX, QOS_PROFILES
from anomaly_seg_ros.objects import ObjectSettings
from anomaly_seg_ros.output_table import OUTPUTS
from anomaly_seg_ros.pipeline.preprocess import MAX_IMAGE_PIXELS
from anomaly_seg_ros.refinement_spec import VDE_UNITS


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter's description, range and whether it may change at run time.

    :param description: one line (``ros2 param describe``, the YAML's comment, the docs).
    :param minimum: numbers: the smallest value allowed (with ``maximum``).
    :param maximum: numbers: the largest value allowed.
    :param step: integers: the step from ``minimum`` (0 = any).
    :param read_only: a start-up parameter: changes only while the node is unconfigured.
    :param choices: strings: the values allowed (empty = any).
    """

    description: str
    minimum: float | None = None
    maximum: float | None = None
    step: float = 0
    read_only: bool = False
    choices: tuple[str, ...] = ()


#: Ranges and texts of the parameters; defaults come from the dataclasses themselves.
SPECS: dict[str, ParameterSpec] = {
    "model_path": ParameterSpec(
        "ONNX model (+ .json sidecar) or TensorRT engine; empty = the bundled demo model",
        read_only=True,
    ),
    "backend": ParameterSpec(
        f"inference backend: {', '.join(BACKEND_CHOICES)}",
        read_only=True,
        choices=BACKEND_CHOICES,
    ),
    "sml_stats_path": ParameterSpec(
        "SML statistics JSON (score_type sml); empty = <model>.sml.json if present",
        read_only=True,
    ),
    "engine_cache_dir": ParameterSpec(
        "TensorRT engine cache folder; empty = beside the ONNX model", read_only=True
    ),
    "input_height": ParameterSpec(
        "expected network input height (fixed at export); 0 = the model's",
        0,
        16384,
        1,
        read_only=True,
    ),
    "input_width": ParameterSpec(
        "expected network input width; 0 = the model's", 0, 16384, 1, read_only=True
    ),
    "host_threads": ParameterSpec(
        "threads for the host refinement (row strips); 0 = one per CPU, at most 8",
        0,
        256,
        1,
        read_only=True,
    ),
    "build_only": ParameterSpec(
        "load the model (TensorRT: build + cache the engine), then exit 0", read_only=True
    ),
    "input_compressed": ParameterSpec(
        "subscribe to <image>/compressed (jpeg/png)", read_only=True
    ),
    "qos_profile": ParameterSpec(
        "input QoS: auto (the camera's reliability), sensor_data (best effort) or reliable",
        read_only=True,
        choices=QOS_PROFILES,
    ),
    "qos_depth": ParameterSpec(
        "input queue depth; 1 = always the newest frame", 1, 100, 1, read_only=True
    ),
    "max_image_pixels": ParameterSpec(
        "reject larger input images (8192×4096 is the most the package accepts)",
        1,
        MAX_IMAGE_PIXELS,
        1,
    ),
    "diagnostics_period": ParameterSpec("seconds between /diagnostics", 0.1, 60.0, read_only=True),
    "debug_inference_delay": ParameterSpec(
        "TEST ONLY: seconds of sleep added to each inference; keep 0.0", 0.0, 10.0
    ),
    "score_type": ParameterSpec(f"anomaly score: {', '.join(SCORE_TYPES)}", choices=SCORE_TYPES),
    "boundary_suppression": ParameterSpec("SML boundary suppression"),
    "boundary_width": ParameterSpec(
        "suppressed band width, pixels; a multiple of boundary_iterations", 0, 64, 1
    ),
    "boundary_iterations": ParameterSpec("boundary suppression iterations", 0, 64, 1),
    "dilated_smoothing": ParameterSpec("SML dilated Gaussian smoothing"),
    "smoothing_kernel": ParameterSpec("Gaussian kernel size (odd)", 1, 63, 2),
    "smoothing_sigma": ParameterSpec("Gaussian sigma, taps", 0.01, 100.0),
    "smoothing_dilation": ParameterSpec("Gaussian kernel dilation", 1, 64, 1),
    "vde": ParameterSpec("VDE road-region refinement"),
    "road_class": ParameterSpec("train ID of the road class", 0, 254, 1),
    "road_confidence": ParameterSpec("softmax probability seeding the road region", 0.0, 1.0),
    "vde_inside_boost": ParameterSpec(
        "VDE: the paper's raise inside the road region; published: inside unchanged, "
        "outside lowered by boost + penalty",
        0.0,
        1000.0,
    ),
    "vde_outside_penalty": ParameterSpec(
        "VDE: the paper's drop outside the road region (see vde_inside_boost)", 0.0, 1000.0
    ),
    "vde_units": ParameterSpec(
        "VDE boost/penalty unit: spread (the frame's score std, the same on every score) "
        "or score (offsets in score units)",
        choices=VDE_UNITS,
    ),
    "threshold": ParameterSpec("anomaly mask threshold on the final score"),
    "min_area": ParameterSpec("smallest kept mask component, camera pixels", 0, 2**31 - 1, 1),
    "overlay_alpha": ParameterSpec("opacity of label colours in the overlay", 0.0, 1.0),
    "aspect": ParameterSpec(
        f"a frame whose aspect differs from the network input's: {', '.join(ASPECT_POLICIES)}"
        " (docs/bring_your_own_model.md)",
        choices=ASPECT_POLICIES,
    ),
    # --- the object layer (docs/objects_ros.md) ---
    "camera_x": ParameterSpec("camera position in the vehicle frame, forward, m"),
    "camera_y": ParameterSpec("camera position in the vehicle frame, left, m"),
    "camera_z": ParameterSpec("camera height above the ground plane, m"),
    "camera_roll": ParameterSpec("camera roll in the vehicle frame, rad"),
    "camera_pitch": ParameterSpec("camera pitch, rad (positive looks down)"),
    "camera_yaw": ParameterSpec("camera yaw in the vehicle frame, rad"),
    "vehicle_frame": ParameterSpec("frame of positions, cloud and markers", read_only=True),
}

#: Texts and ranges of the object layer's parameters (``object_<ObjectSettings field>``);
#: the values are checked by :class:`~anomaly_seg_ros.objects.ObjectSettings` itself.
_OBJECT_SPECS: dict[str, ParameterSpec] = {
    "min_area_px": ParameterSpec("objects: smallest mask component, pixels", 0, 2**31 - 1, 1),
    "min_area_m2": ParameterSpec("objects: smallest frontal area, m^2; 0 = off", 0.0, 1e6),
    "on_road_only": ParameterSpec("objects: keep only those on the road region"),
    "confirm_hits": ParameterSpec("tracks: matched frames to confirm (k of n)", 1, 62, 1),
    "confirm_window": ParameterSpec("tracks: window of the k-of-n confirmation", 1, 62, 1),
    "max_age": ParameterSpec("tracks: frames without a match before dropped", 0, 10000, 1),
    "max_tracks": ParameterSpec("tracks: most live tracks (memory bound)", 1, 100000, 1),
    "max_components": ParameterSpec("objects: most components per frame (cost)", 1, 100000, 1),
    "gate_m": ParameterSpec("tracks: ground distance a match may span, m", 0.0, 1000.0),
    "gate_range_fraction": ParameterSpec("tracks: gate grows by this share of range", 0.0, 10.0),
    "min_iou": ParameterSpec("tracks: box IoU for a match without positions", 0.0, 1.0),
    "max_range_m": ParameterSpec("ground: farther contacts get no position, m", 0.001, 1e4),
    "pixel_sigma": ParameterSpec("ground: contact row sigma, pixels (range sigma)", 0.0, 100.0),
    "pitch_sigma_deg": ParameterSpec("ground: camera pitch sigma, deg (range sigma)", 0.0, 90.0),
    "max_points": ParameterSpec("ground: contact points kept per object", 0, 100000, 1),
    "ignore_bottom_fraction": ParameterSpec("objects: none in this bottom share (hood)", 0.0, 1.0),
    "min_on_road_fraction": ParameterSpec(
        "objects: contact share that counts as on road", 0.0, 1.0
    ),
}
#: The ``publish_*`` switches: one per row of the output table (run time, boolean).
SPECS.update({output.toggle: ParameterSpec(output.parameter_description) for output in OUTPUTS})
SPECS.update(
    {
        OBJECT_PREFIX + item.name: _OBJECT_SPECS.get(
            item.name, ParameterSpec(f"object layer: {item.name.replace('_', ' ')}")
        )
        for item in fields(ObjectSettings)
    }
)


def range_problems(values: Mapping[str, object]) -> list[str]:
    """What is outside its declared range or choices among ``values`` (names without
    either, or unknown to :data:`SPECS`, pass: the settings dataclasses judge them).

    :param values: parameter name -> value.
    :return: one line per value out of range, naming the parameter and its range.
    """
    return list(_outside(values))


def _outside(values: Mapping[str, object]) -> Iterator[str]:
    for name, value in values.items():
        spec = SPECS.get(name)
        if spec is not None and spec.choices and value not in spec.choices:
            yield f"{name} {value!r} unknown; valid: {', '.join(spec.choices)}"
        if spec is None or spec.minimum is None or spec.maximum is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not spec.minimum <= value <= spec.maximum:
            yield f"{name} {value} not in [{spec.minimum:g}, {spec.maximum:g}]"
