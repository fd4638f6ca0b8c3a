"""The detector options every command that runs the Detector shares, defined once.

``--model --backend --params --sml-stats`` choose the model and its settings; ``--score
--threshold`` override two settings, for commands that run one score. The settings are
resolved as the node resolves them: the model's own ``<model>.params.yaml`` (when it has
one), then ``--params``, then the flags.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from anomaly_seg_ros.backends import BACKEND_CHOICES
from anomaly_seg_ros.config import SCORE_TYPES, DetectorConfig, config_from_params_file
from anomaly_seg_ros.errors import ConfigError

if TYPE_CHECKING:
    from anomaly_seg_ros.detector import Detector

LOGGER = logging.getLogger(__name__)

#: The ``dest`` names of the options :func:`add_detector_options` adds.
DETECTOR_OPTIONS = ("model", "backend", "params", "sml_stats")
#: The ``dest`` names of the setting overrides (with ``overrides=True``).
SETTING_OPTIONS = ("score", "threshold")


def add_detector_options(
    parser: argparse.ArgumentParser,
    *,
    overrides: bool = True,
    model_help: str = "exported ONNX model (default: the bundled demo model)",
    only_with_model: bool = False,
    threshold_help: str = "mask threshold (overrides --params)",
) -> None:
    """Add ``--model --backend --params --sml-stats`` (and ``--score --threshold``).

    :param overrides: also add ``--score`` and ``--threshold``.
    :param model_help: the help text of ``--model``.
    :param only_with_model: the command runs the Detector only when ``--model`` is given;
        the other options' help says so.
    :param threshold_help: the help text of ``--threshold``.
    """
    condition = " (with --model)" if only_with_model else ""
    parser.add_argument("--model", type=Path, help=model_help)
    parser.add_argument(
        "--backend", choices=BACKEND_CHOICES, default="auto", help=f"inference backend{condition}"
    )
    parser.add_argument(
        "--params",
        type=Path,
        help=f"ROS parameters YAML (the node's file) with detector settings{condition}",
    )
    parser.add_argument("--sml-stats", type=Path, help=f"SML statistics JSON{condition}")
    if overrides:
        parser.add_argument(
            "--score", choices=SCORE_TYPES, help=f"anomaly score (overrides --params){condition}"
        )
        parser.add_argument("--threshold", type=float, help=threshold_help)


def model_from_args(args: argparse.Namespace) -> Path:
    """``--model``, or the bundled demo model (whether it exists is checked when loading)."""
    from anomaly_seg_ros.model.bundled import default_model_path

    return Path(args.model) if args.model else default_model_path()


def config_from_args(args: argparse.Namespace, model: Path) -> DetectorConfig:
    """Settings: the model's calibrated file (or the defaults), then ``--params``, then
    ``--score``/``--threshold`` where the command has them (``calibrate`` has its own
    ``--score``: a score type when it runs the Detector).

    :raises ConfigError: a bad parameters file (unknown keys included) or value.
    """
    from anomaly_seg_ros.model.bundled import calibrated_config
    from anomaly_seg_ros.node_settings import node_parameter_names
    from anomaly_seg_ros.parameter_specs import range_problems

    config = calibrated_config(model) or DetectorConfig()
    if args.params:
        config = config_from_params_file(
            str(args.params), base=config, other_names=node_parameter_names()
        )
        # the node's declared ranges: a params file means the same to the node and here
        problems = range_problems({f.name: getattr(config, f.name) for f in fields(config)})
        if problems:
            raise ConfigError(f"{args.params}: " + "; ".join(problems))
    overrides = {
        "score_type": getattr(args, "score", None),
        "threshold": getattr(args, "threshold", None),
    }
    return config.replace(**{k: v for k, v in overrides.items() if v is not None})


def detector_from_args(args: argparse.Namespace, config: DetectorConfig | None = None) -> Detector:
    """The Detector the detector options describe (close it, or use it as a context).

    :param config: its settings when already read (:func:`config_from_args`).

    :raises ModelError: the model or its sidecar/statistics are missing or invalid.
    :raises ConfigError: a bad parameters file or setting.
    :raises BackendError: the backend is unavailable.
    """
    from anomaly_seg_ros.detector import Detector

    model = model_from_args(args)
    config = config or config_from_args(args, model)
    detector = Detector.from_path(model, config, args.backend, args.sml_stats)
    LOGGER.info("model %s on %s", model, detector.backend.describe())
    return detector
