"""The evaluation commands without their optional packages (matplotlib, scikit-learn).

The README's install (``requirements-runtime.txt``, rosdep) does not bring them: the node
does not need them. ``anomaly-seg evaluate`` must then still write its tables and say in
one line which figures it skipped and how to install matplotlib; OODMC must name
scikit-learn. Run for real in a subprocess whose import system refuses both packages (the
import-contract test's blocker).
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_import_contract import run_blocked

from anomaly_seg_ros.evaluation.frames import FrameScores, save_frame_scores

OPTIONAL = ["matplotlib", "sklearn"]


def run_without_optional(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return run_blocked(tmp_path, *argv, blocked=OPTIONAL)


def test_the_blocker_refuses_matplotlib_and_sklearn(tmp_path):
    for module in OPTIONAL:
        completed = run_without_optional(tmp_path, "-c", f"import {module}")
        assert completed.returncode != 0 and "blocked" in completed.stderr, module


def test_evaluate_writes_its_tables_and_one_line_without_matplotlib(tmp_path):
    root, scores = tmp_path / "set", tmp_path / "scores"
    for index in range(2):
        label = np.zeros((24, 32), np.uint8)
        label[8:16, 8 + index : 20] = 1
        for folder, array in (("original", np.zeros((24, 32, 3), np.uint8)), ("labels", label)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / folder / f"{index}.png"), array)
        score = label.astype(np.float32) + np.linspace(0, 0.5, label.size).reshape(label.shape)
        save_frame_scores(scores, FrameScores(str(index), label, {"s": score}))
    completed = run_without_optional(
        tmp_path, "-m", "anomaly_seg_ros.cli", "evaluate", "set", "--out", "report",
        "--from-scores", "scores", "--no-progress",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    report = tmp_path / "report"
    assert json.loads((report / "results.json").read_text())["num_frames"] == 2
    assert (report / "results.md").is_file() and (report / "per_frame_ap.csv").is_file()
    assert list(report.glob("*.png")) == []
    lines = [line for line in completed.stderr.splitlines() if "matplotlib" in line]
    assert len(lines) == 1, completed.stderr
    assert "pip install matplotlib" in lines[0] and "python3-matplotlib" in lines[0]
    assert "Traceback" not in completed.stderr


def test_bag_timeline_and_oodmc_without_their_packages(tmp_path):
    script = textwrap.dedent(
        """
        from pathlib import Path
        from anomaly_seg_ros.errors import DependencyError
        from anomaly_seg_ros.evaluation.plots import plot_timeline
        from anomaly_seg_ros.optional import require

        plot_timeline([], Path("timeline.png"))  # what `bag evaluate` draws
        assert not Path("timeline.png").exists()
        try:
            require("sklearn", "OODMC's classifier")
        except DependencyError as error:
            print(error)
        """
    )
    completed = run_without_optional(tmp_path, "-c", script)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == (
        "OODMC's classifier needs scikit-learn, which is not installed: "
        "`pip install scikit-learn` (or `sudo apt install python3-sklearn`)"
    )


def test_oodmc_fit_names_scikit_learn(tmp_path):
    pytest.importorskip("torch")
    script = textwrap.dedent(
        """
        import torch
        from anomaly_seg_ros.errors import DependencyError
        from anomaly_seg_ros.evaluation.oodmc import OODMCScorer

        scorer = OODMCScorer(torch.nn.Sequential(torch.nn.Dropout(0.1)), (8, 8))
        try:
            scorer.fit([])
        except DependencyError as error:
            print(error)
        """
    )
    completed = run_without_optional(tmp_path, "-c", script)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("OODMC's classifier needs scikit-learn"), completed.stdout
