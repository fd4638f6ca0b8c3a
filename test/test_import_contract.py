"""The import contract (DESIGN: the car runs the core without torch; ROS only in ``ros/``).

* the core imports neither torch nor rclpy: no module outside ``networks/`` and
  ``backends/torch.py`` imports torch at module level (two training-side tools import it
  inside a function), and no module outside ``ros/`` imports rclpy or a ROS message
  package at all;
* only ``backends/tensorrt.py`` and ``deploy/`` import tensorrt;
* no module outside ``ros/`` imports ``anomaly_seg_ros.ros`` (or a torch-only module) at
  module level, so nothing pulls rclpy or torch in by the back door;
* ``ray`` (fleet evaluation) only inside functions of ``evaluation/fleet.py``;
* nothing of the source checkout's other folders (``training/``, ``demo/``, ``research/``,
  not installed), not even inside a function: ``anomaly-seg demo`` finds the checkout's
  ``demo.cli`` by name at run time and says in one line where it is absent;
* checked twice: statically (the imports of every module, walked with ``ast``) and for
  real (subprocesses that import every core module, and run ``anomaly-seg bag run`` and
  ``bag evaluate``, with an import blocker installed for rclpy, ROS messages, torch and
  ray).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "anomaly_seg_ros"

#: Top-level names of the ROS 2 Python runtime (rclpy, launch, message packages).
ROS_TOPS = frozenset(
    {"rclpy", "rcl_interfaces", "builtin_interfaces", "launch", "launch_ros", "rosidl_runtime_py"}
)
TORCH_TOPS = frozenset({"torch", "torchvision"})
#: Modules that may import torch at module level (the networks and the PyTorch backend).
TORCH_MODULES = ("anomaly_seg_ros.networks", "anomaly_seg_ros.backends.torch")
#: Modules that may import torch inside a function: tools that take a torch network.
LAZY_TORCH_MODULES = frozenset(
    {"anomaly_seg_ros.commands.export", "anomaly_seg_ros.evaluation.oodmc"}
)
TENSORRT_MODULES = ("anomaly_seg_ros.backends.tensorrt", "anomaly_seg_ros.deploy")
#: Ray is a dependency of the fleet evaluation only, imported inside its functions.
RAY_MODULES = frozenset({"anomaly_seg_ros.evaluation.fleet"})
ROS_PACKAGE = "anomaly_seg_ros.ros"
#: The folders of the source checkout that are not installed.
SOURCE_TREE_TOPS = frozenset({"training", "demo", "research"})


def within(module: str, *areas: str | tuple[str, ...]) -> bool:
    """Whether ``module`` is one of ``areas`` (module or package names) or inside one."""
    names = [name for area in areas for name in ((area,) if isinstance(area, str) else area)]
    return any(module == name or module.startswith(f"{name}.") for name in names)


def is_ros(name: str) -> bool:
    """Whether ``name`` is a module of the ROS 2 Python runtime."""
    top = name.split(".")[0]
    return top in ROS_TOPS or top.endswith(("_msgs", "_srvs"))


@dataclass(frozen=True)
class Import:
    """One import statement: the module it names, where, and whether it runs on import."""

    module: str
    line: int
    module_level: bool


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_source(module: str) -> bool:
    """Whether ``module`` is a file of this repository (``a.b`` -> ``a/b.py``)."""
    return (REPO / Path(*module.split("."))).with_suffix(".py").is_file()


def imports_of(path: Path) -> list[Import]:
    """Every import in a file; ``module_level`` is False inside functions and
    ``if TYPE_CHECKING:`` (those do not run when the module is imported)."""
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            level = module_level
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                level = False
            elif isinstance(child, ast.If) and _is_type_checking(child):
                for statement in child.body:
                    visit(ast.Module(body=[statement], type_ignores=[]), False)
                for statement in child.orelse:
                    visit(ast.Module(body=[statement], type_ignores=[]), module_level)
                continue
            if isinstance(child, ast.Import):
                found.extend(Import(alias.name, child.lineno, level) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative: resolve against the package
                    base = package.rsplit(".", child.level - 1)[0] if child.level > 1 else package
                    name = f"{base}.{child.module}" if child.module else base
                else:
                    name = child.module or ""
                found.append(Import(name, child.lineno, level))
                # `from anomaly_seg_ros.io import bags` imports the submodule too
                found.extend(
                    Import(f"{name}.{alias.name}", child.lineno, level)
                    for alias in child.names
                    if _is_source(f"{name}.{alias.name}")
                )
            visit(child, level)

    visit(ast.parse(path.read_text(), str(path)), True)
    return found


MODULES: dict[str, list[Import]] = {
    module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))
}


def _violations(rule) -> list[str]:
    return [
        f"{module}:{imp.line} imports {imp.module}"
        for module, imports in MODULES.items()
        for imp in imports
        if rule(module, imp)
    ]


def test_the_walk_sees_the_package():
    assert len(MODULES) > 60
    node_imports = {imp.module for imp in MODULES["anomaly_seg_ros.ros.node"]}
    assert {"rclpy", "anomaly_seg_ros.io.messages"} <= node_imports
    lazy = MODULES["anomaly_seg_ros.commands.export"]
    assert any(imp.module == "torch" and not imp.module_level for imp in lazy)


def test_only_the_ros_layer_imports_rclpy_or_ros_messages():
    assert (
        _violations(lambda module, imp: is_ros(imp.module) and not within(module, ROS_PACKAGE))
        == []
    )


def test_torch_only_in_the_networks_and_the_torch_backend():
    def rule(module: str, imp: Import) -> bool:
        if imp.module.split(".")[0] not in TORCH_TOPS or within(module, TORCH_MODULES):
            return False
        return imp.module_level or module not in LAZY_TORCH_MODULES

    assert _violations(rule) == []


def test_tensorrt_only_in_its_backend_and_deploy():
    def rule(module: str, imp: Import) -> bool:
        return imp.module.split(".")[0] == "tensorrt" and not within(module, TENSORRT_MODULES)

    assert _violations(rule) == []


def test_ray_only_inside_the_fleet_evaluation_functions():
    def rule(module: str, imp: Import) -> bool:
        if imp.module.split(".")[0] != "ray":
            return False
        return imp.module_level or module not in RAY_MODULES

    assert _violations(rule) == []


def _loads_torch_or_ros(module: str) -> bool:
    return within(module, ROS_PACKAGE, TORCH_MODULES)


def test_no_back_door_into_rclpy_or_torch():
    """Outside ros/ and the torch modules, nothing imports them at module level."""

    def rule(module: str, imp: Import) -> bool:
        return (
            imp.module_level
            and _loads_torch_or_ros(imp.module)
            and not _loads_torch_or_ros(module)
        )

    assert _violations(rule) == []


def test_the_installed_package_imports_nothing_of_the_source_tree():
    """training/, demo/ and research/ are not installed: the package never imports them."""
    assert all((REPO / top).is_dir() for top in SOURCE_TREE_TOPS)

    def rule(module: str, imp: Import) -> bool:
        return imp.module.split(".")[0] in SOURCE_TREE_TOPS

    assert _violations(rule) == []


# -- the same, for real: subprocesses with an import blocker --------------------------------

BLOCKER = """
import importlib.abc, sys

BLOCKED = {blocked!r}


class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in BLOCKED or top.endswith(("_msgs", "_srvs")):
            raise ImportError(f"import of {{name}} blocked by the import-contract test")
        return None


sys.meta_path.insert(0, Blocked())
"""

#: tensorrt is left to the static rule: blocking it would make the backend probe's
#: ``find_spec`` raise, where a machine without TensorRT answers None.
BLOCKED = sorted(ROS_TOPS | TORCH_TOPS | {"ray"})


def run_blocked(
    tmp_path: Path, *argv: str, blocked: list[str] = BLOCKED
) -> subprocess.CompletedProcess[str]:
    """Run ``python *argv`` with rclpy, ROS messages and torch (or the top-level modules
    ``blocked``) unimportable: a ``sitecustomize`` on PYTHONPATH installs the blocker
    before any other code runs."""
    site = tmp_path / "blocker"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=blocked))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
    )


def test_the_blocker_blocks(tmp_path):
    completed = run_blocked(tmp_path, "-c", "import rclpy")
    assert completed.returncode != 0
    assert "blocked by the import-contract test" in completed.stderr


def test_every_core_module_imports_with_rclpy_and_torch_blocked(tmp_path):
    core = [
        module
        for module in MODULES
        if not within(module, ROS_PACKAGE, TORCH_MODULES, TENSORRT_MODULES)
    ]
    script = textwrap.dedent(
        f"""
        import importlib, sys
        for name in {core!r}:
            importlib.import_module(name)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r})
        assert not leaked, leaked
        print("imported", len({core!r}))
        """
    )
    completed = run_blocked(tmp_path, "-c", script)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["imported", str(len(core))]
    assert "anomaly_seg_ros.io.bag_run" in core and "anomaly_seg_ros.commands.bag" in core


def _write_input_bag(path: Path, frames: int) -> None:
    """Camera frames with a mono8 label on each, written by the package's own bag writer."""
    from anomaly_seg_ros.io.bags import IMAGE_TYPE, create_bag, typestore
    from anomaly_seg_ros.io.image import array_to_raw
    from anomaly_seg_ros.io.messages import bag_image

    store = typestore()
    image_class = store.types[IMAGE_TYPE]
    header_class = store.types["std_msgs/msg/Header"]
    time_class = store.types["builtin_interfaces/msg/Time"]
    rng = np.random.default_rng(5)
    with create_bag(path) as writer:
        camera = writer.add_connection("/camera/image_raw", IMAGE_TYPE, typestore=store)
        truth = writer.add_connection("/ground_truth", IMAGE_TYPE, typestore=store)
        for index in range(frames):
            header = header_class(stamp=time_class(sec=100 + index, nanosec=0), frame_id="cam")
            rgb = rng.integers(0, 255, (64, 128, 3), dtype=np.uint8)
            label = np.zeros((64, 128), np.uint8)
            label[20:40, 50:80] = 1
            for connection, array, encoding in (
                (camera, rgb, "rgb8"),
                (truth, label, "mono8"),
            ):
                message = bag_image(image_class, array_to_raw(array, encoding), header)
                timestamp = (100 + index) * 10**9
                writer.write(connection, timestamp, store.serialize_cdr(message, IMAGE_TYPE))


def test_bag_run_and_bag_evaluate_with_rclpy_blocked(tiny_model, tmp_path):
    frames = 3
    _write_input_bag(tmp_path / "in", frames)
    cli = ("-m", "anomaly_seg_ros.cli", "bag")
    completed = run_blocked(
        tmp_path, *cli, "run", "in", "out", "--model", str(tiny_model),
        "--topic", "/camera/image_raw", "--no-progress",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    completed = run_blocked(
        tmp_path, *cli, "evaluate", "out", "report", "--label-topic", "/ground_truth",
        "--label-bag", "in", "--no-progress",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert results["settings"]["frames"] == frames
    completed = run_blocked(
        tmp_path, *cli, "evaluate", "in", "report_model", "--model", str(tiny_model),
        "--label-topic", "/ground_truth", "--image-topic", "/camera/image_raw", "--no-progress",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "report_model" / "results.json").is_file()


def test_fleet_evaluate_without_ray_says_how_to_install_it(tmp_path):
    _write_input_bag(tmp_path / "in", 1)
    completed = run_blocked(
        tmp_path, "-m", "anomaly_seg_ros.cli", "fleet", "evaluate", "in", "report",
        "--label-topic", "/ground_truth", "--no-progress",
    )  # fmt: skip
    assert completed.returncode == 1
    errors = [line for line in completed.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "pip install 'ray==" in errors[0], completed.stderr
    assert not (tmp_path / "report").exists()
