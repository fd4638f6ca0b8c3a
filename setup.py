"""ament_python package definition for anomaly_seg_ros."""

from collections.abc import Callable
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "anomaly_seg_ros"
HERE = Path(__file__).resolve().parent


#: What a model needs at run time beside ``<stem>.onnx``: sidecar, SML statistics, the
#: calibrated node parameters. Checkpoints (.pt), cards and training metrics stay behind.
MODEL_RUNTIME_SUFFIXES = (".onnx", ".json", ".sml.json", ".params.yaml")


def is_runtime_model_file(path: Path) -> bool:
    """``path`` is an ``.onnx`` model or one of its runtime companions."""
    return any(
        path.name.endswith(suffix)
        and (path.parent / f"{path.name[: -len(suffix)]}.onnx").is_file()
        for suffix in MODEL_RUNTIME_SUFFIXES
    )


def tree(
    folder: str, keep: Callable[[Path], bool] = lambda path: True
) -> list[tuple[str, list[str]]]:
    """Map every file below ``folder`` (that ``keep`` accepts) to
    ``share/<package>/<same relative dir>``."""
    entries: dict[str, list[str]] = {}
    for path in sorted((HERE / folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and keep(path):
            relative = path.relative_to(HERE)
            entries.setdefault(str(Path("share", PACKAGE, relative.parent)), []).append(
                str(relative)
            )
    return sorted(entries.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *tree("launch"),
        *tree("config"),
        *tree("models", is_runtime_model_file),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="anomaly_seg_ros maintainers",
    maintainer_email="maintainers@anomaly-seg-ros.invalid",
    description="Anomaly-aware semantic segmentation node for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "anomaly-seg = anomaly_seg_ros.cli:main",
            "detector_node = anomaly_seg_ros.ros.entry:detector_node",
            "detector_lifecycle_node = anomaly_seg_ros.ros.entry:detector_lifecycle_node",
        ],
    },
)
