"""The node's ROS parameters: declared with descriptors, read once into a frozen dataclass.

Every :class:`~anomaly_seg_ros.config.DetectorConfig` field is a parameter of the same
name, type and default, changeable at run time. The node adds its own settings
(:class:`NodeSettings`); the start-up ones (model, backend, QoS: ``read_only`` in
:data:`SPECS`) change only while the node is unconfigured (the node refuses them otherwise).
A run-time change builds a new frozen :class:`NodeSettings` through
:func:`updated_settings`, which validates exactly as start-up does. Descriptions and ranges
are data (:mod:`anomaly_seg_ros.parameter_specs`); the descriptors are made from them here.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields, replace
from typing import Any, Protocol, runtime_checkable

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rcl_interfaces.srv import (
    DescribeParameters,
    GetParameters,
    GetParameterTypes,
    ListParameters,
    SetParameters,
    SetParametersAtomically,
)
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterNotDeclaredException,
)
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_parameters as PARAMETER_QOS

from anomaly_seg_ros.backends import BACKEND_CHOICES
from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.node_settings import (
    OBJECT_PREFIX,
    QOS_PROFILES,
    NodeSettings,
    published,
    toggle_values,
)
from anomaly_seg_ros.objects import ObjectSettings
from anomaly_seg_ros.output_table import TOGGLES
from anomaly_seg_ros.parameter_specs import SPECS, ParameterSpec, range_problems

__all__ = [
    "BACKEND_CHOICES",
    "QOS_PROFILES",
    "SPECS",
    "NodeSettings",
    "ParameterSpec",
    "declare_parameters",
]


#: What a start-up parameter's ROS description adds (``ros2 param describe``).
UNCONFIGURED_ONLY = " (changeable only while unconfigured)"


def default_values() -> dict[str, Any]:
    """Every parameter name with its default value (what ``config/detector.yaml`` holds)."""
    return flatten(NodeSettings())


def _markdown_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f'"{value}"' if isinstance(value, str) else str(value)


def markdown_table() -> str:
    """The parameter table of ``docs/parameters.md``, made from :data:`SPECS` and the defaults.

    ``python -m anomaly_seg_ros.ros.parameters`` prints it; a test holds the page equal to it.
    """
    rows = [
        "| parameter | default | range | run time | meaning |",
        "|---|---|---|---|---|",
    ]
    for name, default in default_values().items():
        spec = SPECS[name]
        span = ""
        if spec.minimum is not None and spec.maximum is not None and not isinstance(default, bool):
            cast = int if isinstance(default, int) else float
            span = f"{cast(spec.minimum)} … {cast(spec.maximum)}"
        run_time = "no" if spec.read_only else "yes"
        value = _markdown_value(default)
        rows.append(f"| `{name}` | `{value}` | {span} | {run_time} | {spec.description} |")
    return "\n".join(rows) + "\n"


def flatten(settings: NodeSettings) -> dict[str, Any]:
    """The settings as flat ``{parameter name: value}`` (detector fields inlined)."""
    values: dict[str, Any] = {}
    for item in fields(settings):
        if item.name == "publish":  # the switches, where the field is (the docs' order)
            values.update(toggle_values(settings.publish))
        elif item.name not in ("detector", "objects"):
            values[item.name] = getattr(settings, item.name)
    values.update({f.name: getattr(settings.detector, f.name) for f in fields(DetectorConfig)})
    values.update(
        {OBJECT_PREFIX + f.name: getattr(settings.objects, f.name) for f in fields(ObjectSettings)}
    )
    return values


def updated_settings(settings: NodeSettings, changes: Mapping[str, Any]) -> NodeSettings:
    """Apply run-time parameter changes, validated like at start-up.

    :param settings: the current settings.
    :param changes: parameter name -> new value.
    :return: new frozen settings.
    :raises ConfigError: an unknown or read-only name, or an invalid value (the message
        is the reason reported back to ``ros2 param set``).
    """
    unknown = sorted(set(changes) - set(SPECS))
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown}")
    read_only = sorted(name for name in changes if SPECS[name].read_only)
    if read_only:
        raise ConfigError(f"parameter(s) {read_only} are read-only; restart the node to change")
    return settings_from_values({**flatten(settings), **changes})


def settings_from_values(values: Mapping[str, Any]) -> NodeSettings:
    """Build settings from flat parameter values (missing names keep their defaults).

    :raises ConfigError: an invalid value (also one outside its declared range).
    """
    problems = range_problems(values)
    if problems:
        raise ConfigError("; ".join(problems))
    detector_names = {f.name for f in fields(DetectorConfig)}
    detector = DetectorConfig().replace(
        **{name: value for name, value in values.items() if name in detector_names}
    )
    object_values = {
        name[len(OBJECT_PREFIX) :]: value
        for name, value in values.items()
        if name.startswith(OBJECT_PREFIX)
    }
    objects = replace(ObjectSettings(), **object_values)
    node_values = {
        name: value
        for name, value in values.items()
        if name not in detector_names
        and name not in TOGGLES
        and not name.startswith(OBJECT_PREFIX)
    }
    defaults = NodeSettings()
    switched = published(values, defaults.publish)
    return replace(defaults, detector=detector, objects=objects, publish=switched, **node_values)


def descriptor(name: str, default: Any) -> ParameterDescriptor:
    """The ROS descriptor of one parameter: description, range, read-only flag."""
    spec = SPECS[name]
    # Start-up parameters are not read_only for ROS: they may change while the node is
    # unconfigured (a corrected model_path after a failed configure); the node refuses
    # them while configured.
    text = spec.description + (UNCONFIGURED_ONLY if spec.read_only else "")
    result = ParameterDescriptor(description=text)
    if spec.minimum is not None and spec.maximum is not None:
        if isinstance(default, bool):
            pass  # booleans have no range
        elif isinstance(default, int):
            result.integer_range = [
                IntegerRange(
                    from_value=int(spec.minimum), to_value=int(spec.maximum), step=int(spec.step)
                )
            ]
        else:
            result.floating_point_range = [
                FloatingPointRange(
                    from_value=float(spec.minimum), to_value=float(spec.maximum), step=spec.step
                )
            ]
    if spec.choices:
        result.additional_constraints = "one of: " + ", ".join(spec.choices)
    return result


def _declaration_hint(name: str, default: Any, error: Exception) -> str:
    """Why a start-up value was refused, in terms of what the parameter accepts."""
    if isinstance(error, InvalidParameterTypeException):
        kind = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
        hint = f"expected {kind.get(type(default), type(default).__name__)} like {default!r}"
        if isinstance(default, float):
            hint += "; write floats with a decimal point in YAML"
        return hint
    spec = SPECS[name]
    if spec.minimum is not None and spec.maximum is not None:
        step = f" in steps of {spec.step:g}" if spec.step else ""
        return f"allowed: {spec.minimum:g} to {spec.maximum:g}{step}"
    if spec.choices:
        return f"one of: {', '.join(spec.choices)}"
    return "see `ros2 param describe` for what it accepts"


def declare_parameters(
    node: Node, detector_defaults: Callable[[str], DetectorConfig] | None = None
) -> NodeSettings:
    """Declare every parameter on ``node`` and read the values once.

    :param node: the node.
    :param detector_defaults: given the ``model_path`` value, the Detector settings to use
        where the user set none (the model's calibrated parameters file); None = the
        :class:`~anomaly_seg_ros.config.DetectorConfig` defaults.
    :raises ConfigError: a value given at start-up (params file, ``-p``) is invalid.
    """
    detector_names = {f.name for f in fields(DetectorConfig)}
    defaults = default_values()
    values: dict[str, Any] = {}

    def declare(name: str, default: Any) -> None:
        try:
            parameter = node.declare_parameter(name, default, descriptor(name, default))
        except (InvalidParameterTypeException, InvalidParameterValueException) as error:
            raise ConfigError(
                f"parameter {name}: {error} ({_declaration_hint(name, default, error)})"
            ) from error
        values[name] = parameter.value

    for name, default in defaults.items():
        if name not in detector_names:
            declare(name, default)
    detector = detector_defaults(values["model_path"]) if detector_defaults else None
    for name, default in defaults.items():
        if name in detector_names:
            declare(name, getattr(detector, name) if detector else default)
    return settings_from_values(values)


def unknown_overrides(
    overrides: Iterable[str], declared: Callable[[str], bool]
) -> list[tuple[str, str]]:
    """Override names (params file, ``-p``) that no declared parameter takes.

    :param overrides: the names given on the command line / in params files.
    :param declared: whether the node has a parameter of that name.
    :return: (name, hint) pairs; the hint is ``"; did you mean 'x'?"`` or empty.
    """
    unknown = []
    for name in sorted(overrides):
        if declared(name) or name.startswith("qos_overrides."):
            continue
        close = difflib.get_close_matches(name, list(SPECS), n=1)
        unknown.append((name, f"; did you mean {close[0]!r}?" if close else ""))
    return unknown


def own_changes(parameters: Iterable[Parameter[Any]]) -> dict[str, Any]:
    """The changes among ``parameters`` that are this node's; the others (``use_sim_time``,
    ``qos_overrides...``, ``start_type_description_service``) belong to rclpy and pass."""
    return {p.name: p.value for p in parameters if p.name in SPECS}


@runtime_checkable
class BatchingNode(Protocol):
    """A node told about a whole SetParameters request before and after its parameters."""

    def get_name(self) -> str: ...

    def create_service(self, *args: Any, **kwargs: Any) -> Any: ...

    def has_parameter(self, name: str) -> bool: ...

    def get_parameter(self, name: str) -> Parameter[Any]: ...

    def describe_parameter(self, name: str) -> ParameterDescriptor: ...

    def describe_parameters(self, names: list[str]) -> list[ParameterDescriptor]: ...

    def get_parameter_types(self, names: list[str]) -> list[Any]: ...

    def list_parameters(self, prefixes: list[str], depth: int) -> Any: ...

    def set_parameters_atomically(self, parameters: list[Parameter[Any]]) -> Any: ...

    def begin_batch(self, parameters: list[Parameter[Any]]) -> None: ...

    def end_batch(self) -> None: ...


class ParameterServices:
    """The node's six parameter services (``start_parameter_services=False`` in its
    constructor), made with rclpy's public API; they answer like rclpy's own, except:

    * ``set_parameters`` judges the request as a whole: the node is told the full list
      first (``begin_batch``/``end_batch``), so ``boundary_width: 6, boundary_iterations: 3``
      from ``ros2 param load`` is accepted although 6 is no multiple of the old 4 (rclpy
      hands a non-atomic request's parameters to the callbacks one at a time);
    * a read-only parameter "set" to its current value succeeds as a no-op, so
      ``ros2 param load`` of the node's own ``ros2 param dump`` works.

    :param node: a node with ``begin_batch(parameters)`` and ``end_batch()``.
    """

    def __init__(self, node: Node) -> None:
        if not isinstance(node, BatchingNode):
            raise TypeError(f"{type(node).__name__} has no begin_batch/end_batch")
        self._node = node
        name = node.get_name()
        services: dict[str, tuple[Any, Callable[[Any, Any], Any]]] = {
            "describe_parameters": (DescribeParameters, self._describe),
            "get_parameters": (GetParameters, self._get),
            "get_parameter_types": (GetParameterTypes, self._get_types),
            "list_parameters": (ListParameters, self._list),
            "set_parameters": (SetParameters, self._set),
            "set_parameters_atomically": (SetParametersAtomically, self._set_atomically),
        }
        self.services = [
            node.create_service(kind, f"{name}/{service}", callback, qos_profile=PARAMETER_QOS)
            for service, (kind, callback) in services.items()
        ]

    def _describe(self, request: Any, response: Any) -> Any:
        node = self._node
        if all(node.has_parameter(name) for name in request.names):
            response.descriptors = node.describe_parameters(list(request.names))
        return response  # an unknown name: an empty answer, as rclpy's

    def _get(self, request: Any, response: Any) -> Any:
        node = self._node
        if all(node.has_parameter(name) for name in request.names):
            response.values = [
                node.get_parameter(name).get_parameter_value() for name in request.names
            ]
        return response

    def _get_types(self, request: Any, response: Any) -> Any:
        node = self._node
        if all(node.has_parameter(name) for name in request.names):
            response.types = node.get_parameter_types(list(request.names))
        return response

    def _list(self, request: Any, response: Any) -> Any:
        try:
            response.result = self._node.list_parameters(list(request.prefixes), request.depth)
        except (TypeError, ValueError):
            pass
        return response

    def _set(self, request: Any, response: Any) -> Any:
        node = self._node
        parameters = [Parameter.from_parameter_msg(message) for message in request.parameters]
        node.begin_batch(parameters)
        try:
            response.results = [self._set_one(parameter) for parameter in parameters]
        finally:
            node.end_batch()
        return response

    def _set_atomically(self, request: Any, response: Any) -> Any:
        parameters = [Parameter.from_parameter_msg(message) for message in request.parameters]
        try:
            response.result = self._node.set_parameters_atomically(parameters)
        except ParameterNotDeclaredException as error:
            response.result = SetParametersResult(successful=False, reason=str(error))
        return response

    def _set_one(self, parameter: Parameter[Any]) -> SetParametersResult:
        node = self._node
        if node.has_parameter(parameter.name):
            current = node.get_parameter(parameter.name)
            if node.describe_parameter(parameter.name).read_only and (
                current.type_ == parameter.type_ and current.value == parameter.value
            ):
                return SetParametersResult(successful=True, reason="unchanged (read-only)")
        try:
            return node.set_parameters_atomically([parameter])
        except ParameterNotDeclaredException as error:
            return SetParametersResult(successful=False, reason=str(error))


if __name__ == "__main__":
    print(markdown_table(), end="")
