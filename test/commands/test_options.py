"""Every command that runs the Detector takes the same detector options, from one helper."""

from __future__ import annotations

import argparse
import shutil

import pytest

from anomaly_seg_ros.backends import BACKEND_CHOICES
from anomaly_seg_ros.cli import build_parser
from anomaly_seg_ros.commands.options import (
    DETECTOR_OPTIONS,
    SETTING_OPTIONS,
    config_from_args,
    detector_from_args,
)
from anomaly_seg_ros.config import SCORE_TYPES, DetectorConfig
from anomaly_seg_ros.errors import ConfigError

#: command path -> whether it runs one score (and so takes --score/--threshold overrides)
COMMANDS = {
    ("detect",): True,
    ("bag", "run"): True,
    ("bag", "evaluate"): True,
    ("evaluate",): False,
    ("calibrate",): False,
}


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise KeyError(name)


def _options(path: tuple[str, ...]) -> dict[str, argparse.Action]:
    parser = build_parser(only=path[0])
    for name in path:
        parser = _subparser(parser, name)
    return {action.dest: action for action in parser._actions}


@pytest.mark.parametrize("path, overrides", COMMANDS.items(), ids=[" ".join(p) for p in COMMANDS])
def test_every_command_accepts_the_same_detector_options(path, overrides):
    options = _options(path)
    reference = _options(("detect",))
    for dest in DETECTOR_OPTIONS + (SETTING_OPTIONS if overrides else ()):
        assert dest in options, f"{' '.join(path)} lacks --{dest.replace('_', '-')}"
        ours, theirs = options[dest], reference[dest]
        assert ours.option_strings == theirs.option_strings
        assert (ours.type, ours.choices, ours.default) == (
            theirs.type,
            theirs.choices,
            theirs.default,
        )
        assert ours.help, f"{' '.join(path)} --{dest}: no help text"
    assert tuple(options["backend"].choices) == BACKEND_CHOICES
    if overrides:
        assert tuple(options["score"].choices) == SCORE_TYPES


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_help_lists_the_detector_options(path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser(only=path[0]).parse_args([*path, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--model", "--backend", "--params", "--sml-stats"):
        assert flag in text, (path, flag)
    assert "{" + ",".join(BACKEND_CHOICES) + "}" in text


#: the positional arguments each command needs to parse
POSITIONAL = {
    ("detect",): ["images/", "--out", "out/"],
    ("bag", "run"): ["in_bag", "out_bag"],
    ("bag", "evaluate"): ["bag", "report/"],
    ("evaluate",): ["dataset/", "--out", "report/"],
    ("calibrate",): ["dataset/", "--out", "p.yaml", "--target-tpr", "0.9"],
}


def _args(path: tuple[str, ...], *argv: object) -> argparse.Namespace:
    return build_parser(only=path[0]).parse_args([*path, *POSITIONAL[path], *map(str, argv)])


def test_settings_come_from_the_model_file_then_params_then_flags(tiny_model, tmp_path):
    model = tmp_path / "m.onnx"
    shutil.copy(tiny_model, model)
    shutil.copy(tiny_model.with_suffix(".json"), model.with_suffix(".json"))
    assert config_from_args(_args(("bag", "run"), "--model", model), model) == DetectorConfig()
    model.with_name("m.params.yaml").write_text(
        "/**:\n  ros__parameters:\n    score_type: entropy\n    vde: true\n    threshold: 0.5\n"
    )
    params = tmp_path / "p.yaml"
    params.write_text("/**:\n  ros__parameters:\n    threshold: 0.7\n    qos_depth: 2\n")
    expected = DetectorConfig(score_type="entropy", vde=True, threshold=0.5)
    for path in COMMANDS:
        assert config_from_args(_args(path, "--model", model), model) == expected, path
        args = _args(path, "--model", model, "--params", params)
        assert config_from_args(args, model) == expected.replace(threshold=0.7), path
    flags = ("--model", model, "--params", params, "--score", "msp", "--threshold", "0.1")
    args = _args(("detect",), *flags)
    assert config_from_args(args, model) == expected.replace(score_type="msp", threshold=0.1)
    with detector_from_args(args) as detector:
        assert detector.config == expected.replace(score_type="msp", threshold=0.1)
    params.write_text("/**:\n  ros__parameters:\n    thershold: 0.7\n")
    args = _args(("bag", "evaluate"), "--model", model, "--params", params)
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) 'thershold' \(did you mean"):
        config_from_args(args, model)
