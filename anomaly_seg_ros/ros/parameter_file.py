"""``config/detector.yaml``, made from the node's declarations: every parameter with its
default and, as its comment, its description (:data:`~anomaly_seg_ros.ros.parameters.SPECS`).

``python -m anomaly_seg_ros.ros.parameter_file > config/detector.yaml`` writes it; a test
holds the file equal to it. Parameters come in the order the node declares them
(:func:`~anomaly_seg_ros.ros.parameters.default_values`: the settings dataclasses' field
order), so a new parameter lands in the section of its neighbours; :data:`HEADINGS` opens a
section before the parameter it names. Detector settings are listed commented out: a
model's calibrated settings apply where nothing is set.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.node_settings import object_parameter_names
from anomaly_seg_ros.output_table import OBJECT_OUTPUTS, TOGGLES
from anomaly_seg_ros.ros.parameters import SPECS, default_values

#: The file's opening comment.
PREAMBLE = """\
# Parameters of the anomaly_seg_ros detector node (names map 1:1 to DetectorConfig fields
# plus the node's own settings), with their defaults. Use with
#   ros2 launch anomaly_seg_ros detector.launch.py params_file:=<copy of this file>
#   detector_node --ros-args --params-file config/detector.yaml -r image:=/camera/image_raw
# Write floating-point values with a decimal point (1.0, not 1): ROS parameters are typed.
# "(restart)": changeable only while the node is unconfigured; the others at run time
# (`ros2 param set`). Made from the node's declarations: python -m
# anomaly_seg_ros.ros.parameter_file > config/detector.yaml (docs/parameters.md).
/**:
  ros__parameters:"""

#: Comment lines that open a section, before the parameter they are keyed on.
HEADINGS: dict[str, tuple[str, ...]] = {
    "model_path": ("--- model ---",),
    "input_compressed": ("--- input ---",),
    TOGGLES[0]: ("--- outputs (docs/ros.md); unsubscribed outputs are never computed ---",),
    OBJECT_OUTPUTS[0].toggle: (
        "anomaly objects (docs/objects_ros.md); each needs the mask, not the pictures",
    ),
    "camera_x": (
        "--- camera mounting in the vehicle frame, for ground positions ---",
        "REP 103 (x forward, y left, z up), metres and radians; the camera body frame (x along",
        "the optical axis), i.e. the transform base_link -> camera_link, NOT -> *_optical_frame.",
        "All six 0.0 = not set: objects are published without position. The intrinsics come",
        "from the camera's CameraInfo (topic `camera_info`, remap it beside `image`).",
    ),
    "debug_inference_delay": ("--- testing only ---",),
    "score_type": (
        "--- Detector settings: score, refinement, mask, overlay ---",
        "Left unset on purpose: a model's own calibrated settings (<model>.params.yaml beside",
        "it, e.g. models/demo/demo.params.yaml for the bundled model) apply where nothing is",
        "set, else the defaults shown. Uncomment a line to override (ROS 2 types: 1.0 not 1).",
    ),
    "threshold": ("--- mask ---",),
    "overlay_alpha": ("--- pictures ---",),
    object_parameter_names()[0]: (
        "--- object layer: components, filters, tracks (a change restarts tracks) ---",
    ),
}
#: Column of the comments (longer lines put theirs two spaces after the value).
COMMENT_COLUMN = 34


def yaml_value(value: Any) -> str:
    """A default as the YAML writes it: ``true``, ``"auto"``, ``0.5``, ``20``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def yaml_text() -> str:
    """The whole ``config/detector.yaml``.

    :raises KeyError: a heading keyed on a name that is no parameter.
    """
    values = default_values()
    unknown = sorted(set(HEADINGS) - set(values))
    if unknown:
        raise KeyError(f"HEADINGS name no parameter: {unknown}")
    commented = {f.name for f in fields(DetectorConfig)}
    lines = [PREAMBLE]
    for name, default in values.items():
        if name in HEADINGS:
            if len(lines) > 1:
                lines.append("")
            lines += [f"    # {text}" for text in HEADINGS[name]]
        spec = SPECS[name]
        entry = f"{'# ' if name in commented else ''}{name}: {yaml_value(default)}"
        text = spec.description + (" (restart)" if spec.read_only else "")
        lines.append(f"    {entry.ljust(COMMENT_COLUMN - 6)}  # {text}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(yaml_text(), end="")
