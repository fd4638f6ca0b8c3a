"""Where the bundled models live: the source tree, or ``share/anomaly_seg_ros`` when installed."""

from __future__ import annotations

from pathlib import Path

from anomaly_seg_ros.config import DetectorConfig, config_from_params_file
from anomaly_seg_ros.errors import ModelError

PACKAGE = "anomaly_seg_ros"
#: The embedded default model, relative to the package's ``models/`` folder.
DEFAULT_MODEL = Path("demo") / "demo.onnx"


def models_dir() -> Path:
    """The ``models/`` folder: beside the sources (a checkout or editable install), else the
    ament share directory of an installed package (``colcon build``, ``ros2 run``)."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "package.xml").is_file():  # a source tree, or an editable install of one
        return checkout / "models"
    try:
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )
    except ImportError as error:
        raise ModelError(
            "cannot locate the bundled models: no source tree and no ament_index_python"
        ) from error
    try:
        return Path(get_package_share_directory(PACKAGE)) / "models"
    except (PackageNotFoundError, OSError) as error:  # OSError: AMENT_PREFIX_PATH unset
        raise ModelError(
            f"cannot locate the bundled models: package {PACKAGE} is not in AMENT_PREFIX_PATH"
        ) from error


def default_model_path() -> Path:
    """Path of the embedded default model; it may not exist (checked when loading)."""
    return models_dir() / DEFAULT_MODEL


def resolve_model_path(configured: str | Path | None) -> Path:
    """The model to load: ``configured``, or else the bundled demo model (looked up in
    the source tree, then in the installed package share; see :func:`models_dir`).

    The node (``model_path`` parameter), ``anomaly-seg bag`` and the demo all use it.

    :param configured: a model path; empty or None = the bundled demo model.
    :return: an existing model file.
    :raises ModelError: ``configured`` does not exist, or no demo model is found.
    """
    path = Path(configured).expanduser() if configured else default_model_path()
    if path.is_file():
        return path.resolve()
    if path.is_dir():
        models = sorted(p.name for p in path.glob("*.onnx"))[:3]
        raise ModelError(
            f"model_path {path} is a directory, not a model file; point it at the .onnx "
            f"(or engine) file{' inside, e.g. ' + str(path / models[0]) if models else ''}"
        )
    if configured:
        raise ModelError(
            f"model_path {path} does not exist; pass an exported model "
            "(`anomaly-seg export`) with -p model_path:=/path/to/model.onnx"
        )
    raise ModelError(
        f"no model_path given and the bundled demo model {path} is missing; build it "
        "(`python -m demo.model.make`) or set -p model_path:=/path/to/model.onnx"
    )


def model_params_path(model_path: str | Path) -> Path:
    """The calibrated settings that travel with a model: ``demo.onnx`` -> ``demo.params.yaml``
    (a ROS parameters file, as ``anomaly-seg calibrate`` writes)."""
    model = Path(model_path)
    return model.with_name(f"{model.stem}.params.yaml")


def calibrated_config(model_path: str | Path) -> DetectorConfig | None:
    """The Detector settings of the model's own parameters file, or None when it has none.

    The bundled demo model ships ``demo.params.yaml`` (entropy + VDE, threshold for 2 % FPR);
    with the package defaults (max logit, threshold 0) its mask would cover nearly nothing.

    :raises ConfigError: the file exists but is unreadable or invalid.
    """
    path = model_params_path(model_path)
    return config_from_params_file(str(path)) if path.is_file() else None
