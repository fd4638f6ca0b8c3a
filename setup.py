"""ament_python package definition for anomaly_seg_ros."""

from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "anomaly_seg_ros"
HERE = Path(__file__).resolve().parent


def tree(folder: str) -> list[tuple[str, list[str]]]:
    """Map every file below ``folder`` to ``share/<package>/<same relative dir>``."""
    entries: dict[str, list[str]] = {}
    for path in sorted((HERE / folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
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
        *tree("models"),
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
            "detector_node = anomaly_seg_ros.ros.node:main",
            "detector_lifecycle_node = anomaly_seg_ros.ros.lifecycle_node:main",
        ],
    },
)
