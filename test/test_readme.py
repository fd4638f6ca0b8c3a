"""The README tells the truth: its commands run, its parameters match the node.

Every command line in the README's ``bash`` blocks must be handled here: run as written
(``--help`` lines), run with placeholder files replaced by generated ones, or listed with
the reason it cannot run in a test. A new README command that is none of these fails.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

#: Commands that cannot run inside a test, with the reason.
NOT_HERE = {
    "make ": "the README's own set-up commands (CI runs `make test`; running them here recurses)",
    "cd ": "workspace navigation on a ROS install",
    "pip install": "installs into a ROS install's Python",
    "ros2 launch": "`launch` is not pip-installable; test/ros/test_launch_file.py checks it",
    "anomaly-seg bag run": "needs a bag; test/ros/test_bag_tools.py runs it on generated bags",
    "sudo apt": "system packages of a ROS install",
    "colcon build": "builds a ROS workspace (colcon + ament on a ROS install)",
    "ros2 lifecycle": "ros2cli is not pip-installable; test/ros/test_lifecycle_node.py calls "
    "the same lifecycle services",
}


def readme_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "anomaly_seg_ros.cli", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def workspace(tiny_model, tmp_path_factory):
    """Stand-ins for the README's placeholder files, made from the session's tiny model."""
    folder = tmp_path_factory.mktemp("readme")
    images = folder / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        cv2.imwrite(str(images / f"f{index}.png"), rng.integers(0, 256, (60, 120, 3), np.uint8))
    model = folder / "my.onnx"
    shutil.copy(tiny_model, model)
    shutil.copy(tiny_model.with_suffix(".json"), folder / "my.json")
    from anomaly_seg_ros.model.sml_stats import save_sml_stats

    names = [f"class{i}" for i in range(19)]
    save_sml_stats(folder / "my.sml.json", names, np.zeros(19), np.ones(19))
    return {"images": images, "model": model, "folder": folder}


def substitute(words: list[str], workspace: dict, out: Path) -> list[str]:
    """Replace the README's placeholder paths by generated files."""
    replaced = []
    for word in words:
        if word.endswith((".png", "/original")) or word == "frame.png":
            word = str(
                workspace["images"] / "f0.png" if word.endswith(".png") else workspace["images"]
            )
        elif word.endswith(".onnx") and "--out" not in replaced[-1:]:
            word = str(workspace["model"])
        elif replaced[-1:] == ["--out"]:
            word = str(out / Path(word).name)
        replaced.append(word)
    return replaced


def test_every_readme_command_is_covered(workspace, tmp_path):
    commands = readme_commands()
    assert commands, "no bash blocks found in README.md"
    ran = 0
    for command in commands:
        if any(command.startswith(prefix) for prefix in NOT_HERE):
            continue
        words = shlex.split(command)
        if words[0] == "anomaly-seg" and "--help" in words:
            completed = cli(*words[1:])
        elif words[:2] == ["anomaly-seg", "detect"]:
            arguments = substitute(words[1:], workspace, tmp_path)
            if "--model" not in arguments:
                from anomaly_seg_ros.model.bundled import default_model_path

                if not default_model_path().is_file():
                    arguments += ["--model", str(workspace["model"])]
            completed = cli(*arguments)
        elif words[:2] == ["anomaly-seg", "export"]:
            completed = run_export(words[1:], tmp_path)
        elif words[:2] in (["anomaly-seg", "calibrate-sml"], ["anomaly-seg", "evaluate"]):
            completed = run_on_folder(words[1:], workspace, tmp_path)
        elif words[0] == "detector_node":
            completed = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "anomaly_seg_ros.ros.node",
                    *words[1:],
                    "-p",
                    f"model_path:={workspace['model']}",
                    "-p",
                    "build_only:=true",
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        else:
            pytest.fail(f"README command not covered by test/test_readme.py: {command}")
        assert completed.returncode == 0, f"{command}\n{completed.stdout}\n{completed.stderr}"
        ran += 1
    assert ran >= 5


def run_on_folder(
    arguments: list[str], workspace: dict, tmp_path: Path
) -> subprocess.CompletedProcess:
    """`calibrate-sml --model X.onnx FRAMES` / `evaluate DATASET --model X.onnx --out D`:
    a copy of the tiny model, the generated images and a generated anomaly folder (the
    Fishyscapes processed layout, original/ + labels/) stand in."""
    model = tmp_path / "own.onnx"
    shutil.copy(workspace["model"], model)
    shutil.copy(workspace["model"].with_suffix(".json"), model.with_suffix(".json"))
    dataset = tmp_path / "anomaly_set"
    for folder in ("original", "labels"):
        (dataset / folder).mkdir(parents=True, exist_ok=True)
    for path in workspace["images"].iterdir():
        shutil.copy(path, dataset / "original" / path.name)
        label = np.zeros((60, 120), np.uint8)
        label[20:40, 50:70] = 1
        cv2.imwrite(str(dataset / "labels" / path.name), label)
    replaced = []
    for word in arguments:
        if word.endswith(".onnx"):
            word = str(model)
        elif replaced[-1:] == ["--out"]:
            word = str(tmp_path / Path(word).name)
        elif replaced and not word.startswith("-") and not replaced[-1].startswith("-"):
            # a positional argument after the command: the frames / dataset folder
            word = str(workspace["images"] if arguments[0] == "calibrate-sml" else dataset)
        replaced.append(word)
    return cli(*replaced)


def foreign_onnx(path: Path, channels: int) -> Path:
    """An ONNX-only network (1×1 convolution at stride 2) emitting ``channels`` logits."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["rgb", "w"], ["logits"], strides=[2, 2])],
        "foreign",
        [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, [1, 3, 64, 128])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(rng.standard_normal((channels, 3, 1, 1), np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what exporters write; ONNX Runtime may not read the newest yet
    onnx.save(model, path)
    return path


def run_export(arguments: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """`export --checkpoint X.pth ...`: a small checkpoint of our format stands in for X;
    `export --onnx X.onnx`: a small ONNX-only network emitting 20 channels."""
    if "--onnx" in arguments:
        source = foreign_onnx(tmp_path / "foreign.onnx", 20)
        at = arguments.index("--onnx")
        arguments = [*arguments[: at + 1], str(source), *arguments[at + 2 :]]
    torch = pytest.importorskip("torch")
    from anomaly_seg_ros.networks import create_network
    from anomaly_seg_ros.networks.checkpoint import save_checkpoint

    torch.manual_seed(0)
    checkpoint = save_checkpoint(
        tmp_path / "stand_in.pt",
        create_network("mobilenetv2", 19, 16, width_mult=0.25),
        [f"c{i}" for i in range(19)],
    )
    replaced, skip = [], 0
    for index, word in enumerate(arguments):
        if skip:
            skip -= 1
            continue
        if word == "--checkpoint":
            replaced += [word, str(checkpoint)]
            skip = 1
        elif word == "--kind":
            skip = 1  # the stand-in is our own format, detected automatically
        elif word == "--input-size":
            replaced += [word, "64", "64"]  # the layout is the point, not the size
            skip = 2
        elif word == "--out":
            replaced += [word, str(tmp_path / Path(arguments[index + 1]).name)]
            skip = 1
        else:
            replaced.append(word)
    return cli(*replaced)


def test_parameter_page_is_the_nodes_table():
    """docs/parameters.md holds the table made from the node's declarations, unedited."""
    from anomaly_seg_ros.ros.parameters import markdown_table

    page = (ROOT / "docs" / "parameters.md").read_text()
    begin, end = "<!-- parameter table: generated, do not edit by hand -->\n", "<!-- end of"
    table = page[page.index(begin) + len(begin) : page.index(end)]
    assert table == markdown_table(), "run: python -m anomaly_seg_ros.ros.parameters"


def test_readme_parameter_rows_match_the_node():
    """The README's short table names real parameters with their real defaults."""
    from anomaly_seg_ros.ros.parameters import SPECS, default_values

    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", README, re.M))
    documented = {name: value for name, value in rows.items() if name in SPECS}
    assert len(documented) >= 8, "the README's parameter table is missing"
    defaults = default_values()
    for name, value in documented.items():
        expected = defaults[name]
        text = str(expected).lower() if isinstance(expected, bool) else str(expected)
        assert value == (f'"{expected}"' if isinstance(expected, str) else text), name


def test_readme_is_an_entry_point():
    """At most 200 lines: what it is, set-up, the car, parameters, figures; the rest in docs/."""
    assert len(README.splitlines()) <= 200
