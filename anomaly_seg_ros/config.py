"""Detector settings: one frozen dataclass, validated on construction.

The ROS node maps its parameters onto these fields one to one (same names), the CLI maps
its flags onto them, and a run-time change builds a new frozen config with
:func:`dataclasses.replace`, which validates again.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Iterator
from dataclasses import dataclass, fields, replace
from typing import Any

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.refinement_spec import SCORE_TYPES as SCORE_TYPES  # the names, once
from anomaly_seg_ros.refinement_spec import VDE_UNITS

#: The detector node's name: its private topics are ``/<namespace>/NODE_NAME/...``.
NODE_NAME = "anomaly_seg_detector"

#: How a frame whose aspect differs from the network input's reaches the network (see
#: :func:`anomaly_seg_ros.pipeline.preprocess.view_geometry`): ``stretch`` scales each axis on its
#: own; ``letterbox`` scales to fit and pads the rest of the input with the normalisation
#: mean; ``center_crop`` scales to fill and leaves the camera's outer bands unseen.
ASPECT_POLICIES = ("stretch", "letterbox", "center_crop")


@dataclass(frozen=True)
class DetectorConfig:
    """Everything that shapes a Detector's output.

    Score and refinement (at the network input size):

    :param score_type: one of :data:`SCORE_TYPES`; ``sml`` needs SML statistics.
    :param boundary_suppression: SML boundary suppression (Jung et al. 2021).
    :param boundary_width: width of the suppressed band around class boundaries, pixels.
    :param boundary_iterations: iterations over which the band shrinks to zero.
    :param dilated_smoothing: dilated Gaussian smoothing after boundary suppression.
    :param smoothing_kernel: Gaussian kernel size (odd).
    :param smoothing_sigma: Gaussian sigma, in kernel taps.
    :param smoothing_dilation: dilation of the Gaussian kernel.
    :param vde: VDE road-region refinement (COCO-DAG paper).
    :param road_class: train ID of the road class.
    :param road_confidence: minimum softmax probability for a pixel to seed the road region.
    :param vde_inside_boost: the VDE paper's raise of the score inside the road region,
        in ``vde_units``.
    :param vde_outside_penalty: the paper's drop outside it, in ``vde_units``. Published
        is the same ranking minus the constant boost, so that the road keeps its own score
        values: inside unchanged, outside lowered by ``vde_inside_boost +
        vde_outside_penalty``.
    :param vde_units: ``spread``: boost and penalty are multiples of the score's spread
        over the frame (the standard deviation of the map), so that they mean the same on
        every score; ``score``: offsets in the score's own units (the form before).

    Mask (at the camera resolution):

    :param threshold: a pixel is anomalous when its final score is above this value.
    :param min_area: connected components (8-connectivity) smaller than this, in camera
        pixels, are removed from the mask.
    :param overlay_alpha: opacity of the label colours in the overlay.

    Geometry:

    :param aspect: one of :data:`ASPECT_POLICIES`. With ``center_crop`` the camera pixels
        the network never saw get label 255 (void), the view's lowest score and no mask.
    """

    score_type: str = "max_logit"
    boundary_suppression: bool = False
    boundary_width: int = 4
    boundary_iterations: int = 4
    dilated_smoothing: bool = False
    smoothing_kernel: int = 7
    smoothing_sigma: float = 1.0
    smoothing_dilation: int = 6
    vde: bool = False
    road_class: int = 0
    road_confidence: float = 0.9
    # 0.5 + 0.5 spreads: chosen on synthetic settings frames (benchmarks/vde_scale.py).
    vde_inside_boost: float = 0.5
    vde_outside_penalty: float = 0.5
    vde_units: str = "spread"
    threshold: float = 0.0
    min_area: int = 0
    overlay_alpha: float = 0.5
    aspect: str = "stretch"

    def __post_init__(self) -> None:
        problems = list(_problems(self))
        if problems:
            raise ConfigError("invalid detector config: " + "; ".join(problems))

    def replace(self, **changes: Any) -> DetectorConfig:
        """A copy with ``changes`` applied (validated); unknown names raise ConfigError."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(
                f"unknown detector setting(s) {unknown}; valid: {', '.join(sorted(known))}"
            )
        return replace(self, **changes)


def _problems(config: DetectorConfig) -> Iterator[str]:
    for field in fields(config):  # NaN passes every range check below (all compare False)
        value = getattr(config, field.name)
        if field.type == "float" and isinstance(value, float) and not math.isfinite(value):
            yield f"{field.name} {value} must be a finite number"
    if config.score_type not in SCORE_TYPES:
        yield f"score_type {config.score_type!r} unknown; valid: {', '.join(SCORE_TYPES)}"
    if not 0 <= config.boundary_width <= 64:
        yield f"boundary_width {config.boundary_width} not in [0, 64]"
    if not 0 <= config.boundary_iterations <= 64:
        yield f"boundary_iterations {config.boundary_iterations} not in [0, 64]"
    if (
        config.boundary_suppression
        and config.boundary_iterations > 0
        and config.boundary_width % config.boundary_iterations
    ):
        yield (
            f"boundary_width {config.boundary_width} must be a multiple of "
            f"boundary_iterations {config.boundary_iterations}"
        )
    if config.smoothing_kernel < 1 or config.smoothing_kernel % 2 == 0:
        yield f"smoothing_kernel {config.smoothing_kernel} must be odd and >= 1"
    if not 0 < config.smoothing_sigma <= 100:
        yield f"smoothing_sigma {config.smoothing_sigma} not in (0, 100]"
    if not 1 <= config.smoothing_dilation <= 64:
        yield f"smoothing_dilation {config.smoothing_dilation} not in [1, 64]"
    if not 0 <= config.road_class <= 254:
        yield f"road_class {config.road_class} not in [0, 254]"
    if not 0.0 <= config.road_confidence <= 1.0:
        yield f"road_confidence {config.road_confidence} not in [0, 1]"
    if config.vde_inside_boost < 0 or config.vde_outside_penalty < 0:
        yield "vde_inside_boost and vde_outside_penalty must be >= 0"
    if config.vde_units not in VDE_UNITS:
        yield f"vde_units {config.vde_units!r} unknown; valid: {', '.join(VDE_UNITS)}"
    if config.min_area < 0:
        yield f"min_area {config.min_area} must be >= 0"
    if not 0.0 <= config.overlay_alpha <= 1.0:
        yield f"overlay_alpha {config.overlay_alpha} not in [0, 1]"
    if config.aspect not in ASPECT_POLICIES:
        yield f"aspect {config.aspect!r} unknown; valid: {', '.join(ASPECT_POLICIES)}"


def config_from_params_file(
    path: str,
    node_name: str = NODE_NAME,
    base: DetectorConfig | None = None,
    other_names: Collection[str] | None = None,
) -> DetectorConfig:
    """Read Detector settings from a ROS 2 parameters YAML (the node's own file).

    Takes the ``ros__parameters`` of ``/**`` and of ``node_name`` (the latter wins), keeps
    the keys that are DetectorConfig fields and ignores the node-only ones (topics, QoS).

    :param path: the YAML file.
    :param node_name: the node whose section is read besides ``/**``.
    :param base: settings the file's values are applied to (default: the defaults).
    :param other_names: when given, every other key must be one of these (the node's own
        parameters); a misspelt key is then an error instead of a silent default.
    :raises ConfigError: unreadable file, not a parameters file, unknown keys (with
        ``other_names``) or invalid values.
    """
    from anomaly_seg_ros.config_files import read_yaml

    document = read_yaml(path, "parameters file") or {}
    keys = ("/**", node_name, f"/{node_name}")
    found = [document.get(key) for key in keys] if isinstance(document, dict) else []
    sections = [section for section in found if isinstance(section, dict)]
    if not sections or not all(
        isinstance(section.get("ros__parameters", {}), dict) for section in sections
    ):
        raise ConfigError(
            f"{path} is not a ROS 2 parameters file for {node_name}: expected '/**:' or "
            f"'{node_name}:' with 'ros__parameters:' below (like config/detector.yaml)"
        )
    values: dict[str, Any] = {}
    for section in sections:
        values.update(section.get("ros__parameters") or {})
    known = {f.name for f in fields(DetectorConfig)}
    if other_names is not None:
        unknown = sorted(set(values) - known - set(other_names))
        if unknown:
            valid = [*known, *other_names]
            hints = [_with_suggestion(name, valid) for name in unknown]
            raise ConfigError(f"{path}: unknown parameter(s) {', '.join(hints)}")
    settings = {name: value for name, value in values.items() if name in known}
    try:
        return (base or DetectorConfig()).replace(**settings)
    except TypeError as error:  # a value of the wrong type reached a comparison
        raise ConfigError(f"{path}: invalid value ({error})") from error


def _with_suggestion(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    return f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)
