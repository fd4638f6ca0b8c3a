"""Parameter declarations, the frozen settings and the shipped defaults file."""

from __future__ import annotations

import math
import os
import re

import pytest
import rclpy
import yaml
from rclpy.context import Context
from rclpy.parameter import Parameter
from ros_harness import REPO

from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.ros.parameters import (
    SPECS,
    NodeSettings,
    declare_parameters,
    default_values,
    descriptor,
    settings_from_values,
    updated_settings,
)


def test_defaults_file_lists_every_parameter_with_its_default() -> None:
    text = (REPO / "config" / "detector.yaml").read_text()
    values = yaml.safe_load(text)["/**"]["ros__parameters"]
    # Detector settings are listed commented out, so the model's calibrated ones apply.
    commented = yaml.safe_load("\n".join(re.findall(r"^    # (\w+: .*?)(?:  +#.*)?$", text, re.M)))
    detector_names = set(DetectorConfig.__dataclass_fields__)
    assert set(values).isdisjoint(detector_names)
    assert set(commented) == detector_names
    assert {**values, **commented} == default_values()
    for name, value in {**values, **commented}.items():  # typed like the declaration
        assert type(value) is type(default_values()[name]), name


def test_every_detector_field_is_a_parameter() -> None:
    names = set(default_values())
    assert set(DetectorConfig.__dataclass_fields__) <= names
    assert names == set(SPECS)


def test_run_time_changes_are_validated() -> None:
    settings = NodeSettings()
    changed = updated_settings(settings, {"threshold": 2.5, "publish_overlay": False})
    assert changed.detector.threshold == 2.5 and not changed.publishes("overlay")
    assert settings.detector.threshold == 0.0  # frozen: the old settings are untouched
    with pytest.raises(ConfigError, match="read-only"):
        updated_settings(settings, {"model_path": "/x.onnx"})
    with pytest.raises(ConfigError, match="unknown parameter"):
        updated_settings(settings, {"thershold": 1.0})
    with pytest.raises(ConfigError, match="smoothing_kernel"):
        updated_settings(settings, {"smoothing_kernel": 4})
    with pytest.raises(ConfigError, match="backend"):
        NodeSettings(backend="cuda")


def test_descriptors_carry_ranges_and_read_only_flags() -> None:
    kernel = descriptor("smoothing_kernel", 7)
    assert (kernel.integer_range[0].from_value, kernel.integer_range[0].step) == (1, 2)
    alpha = descriptor("overlay_alpha", 0.5)
    assert (alpha.floating_point_range[0].from_value, alpha.floating_point_range[0].to_value) == (
        0.0,
        1.0,
    )
    # Start-up parameters change only while unconfigured: the node refuses them when
    # configured, so for ROS they are not read-only; the description says so.
    backend = descriptor("backend", "auto")
    assert not backend.read_only and "only while unconfigured" in backend.description
    assert "sml" in descriptor("score_type", "max_logit").additional_constraints
    assert not descriptor("threshold", 0.0).read_only


def test_declared_parameters_read_overrides_once() -> None:
    context = Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node(
            "parameters_under_test",
            context=context,
            parameter_overrides=[
                Parameter("threshold", value=3.5),
                Parameter("score_type", value="entropy"),
                Parameter("qos_profile", value="reliable"),
            ],
        )
        settings = declare_parameters(node)
        assert settings.detector.threshold == 3.5
        assert settings.detector.score_type == "entropy"
        assert settings.qos_profile == "reliable"
        assert node.get_parameter("min_area").value == 0
        node.destroy_node()
    finally:
        context.try_shutdown()


def test_large_image_transport_profile_respects_the_user(monkeypatch) -> None:
    from anomaly_seg_ros.ros.session import FASTDDS_PROFILE_VARIABLES, use_large_image_transport

    for name in FASTDDS_PROFILE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    profile = use_large_image_transport()
    assert profile is not None and profile.name == "fastdds_large_images.xml"
    assert "<segment_size>" in profile.read_text()
    assert os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] == str(profile)

    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", "/mine.xml")
    assert use_large_image_transport() is None  # the user's own profile wins
    assert os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] == "/mine.xml"
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE")
    monkeypatch.setenv("RMW_IMPLEMENTATION", "rmw_cyclonedds_cpp")
    assert use_large_image_transport() is None  # not Fast DDS: nothing to configure


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "cannot read --params-file {path}: No such file or directory"),
        ("a: [\n::", "cannot read --params-file {path}: while parsing"),
        ("threshold: 2.0\n", "--params-file {path}: not a ROS 2 parameters file"),
    ],
)
def test_bad_params_file_is_one_line_naming_it(tmp_path, content, expected) -> None:
    from anomaly_seg_ros.ros.session import check_params_files

    path = tmp_path / "p.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        check_params_files(["node", "--ros-args", "--params-file", str(path)])
    message = str(caught.value)
    assert "\n" not in message and message.startswith(expected.format(path=path)), message
    check_params_files(["node", "--ros-args", "--params-file", str(REPO / "config/detector.yaml")])


def test_defaults_file_is_made_from_the_declarations() -> None:
    """config/detector.yaml: every value and comment from SPECS and the defaults."""
    from anomaly_seg_ros.ros.parameter_file import yaml_text

    text = (REPO / "config" / "detector.yaml").read_text()
    assert text == yaml_text(), "run: python -m anomaly_seg_ros.ros.parameter_file"
    for name, spec in SPECS.items():
        assert re.search(rf"^    (# )?{name}: .*  # {re.escape(spec.description)}", text, re.M)


def test_choice_descriptions_name_every_choice() -> None:
    for name in SPECS:
        constraints = descriptor(name, default_values()[name]).additional_constraints
        for choice in constraints.removeprefix("one of: ").split(", ") if constraints else ():
            assert choice in SPECS[name].description, (name, choice)


def _outside(value: float, upward: bool, integer: bool) -> float:
    if integer:
        return int(value) + (1 if upward else -1)
    return math.nextafter(value, math.inf if upward else -math.inf)


def test_the_settings_refuse_what_the_declared_ranges_refuse(tmp_path) -> None:
    """A range is declared once (SPECS: the node's descriptors); the settings built from
    parameter values (run-time changes) and the ``anomaly-seg`` commands' ``--params``
    refuse every value outside it too, so a params file means the same to both."""
    import argparse

    from anomaly_seg_ros.commands.options import config_from_args

    defaults = default_values()
    detector_names = set(DetectorConfig.__dataclass_fields__)
    checked = 0
    for name, spec in SPECS.items():
        default = defaults[name]
        if spec.minimum is None or spec.maximum is None or isinstance(default, bool):
            continue
        integer = isinstance(default, int)
        for bound, upward in ((spec.minimum, False), (spec.maximum, True)):
            value = _outside(bound, upward, integer)
            with pytest.raises(ConfigError, match=name):
                settings_from_values({name: value})
                pytest.fail(f"{name} = {value} is outside {spec.minimum} … {spec.maximum}")
            if name in detector_names:
                params = tmp_path / f"{name}.yaml"
                params.write_text(f"/**:\n  ros__parameters:\n    {name}: {value!r}\n")
                args = argparse.Namespace(params=params, score=None, threshold=None)
                with pytest.raises(ConfigError, match=name):
                    config_from_args(args, tmp_path / "no_model.onnx")
                checked += 1
    assert checked >= 10  # the reader sees the detector's ranged settings
