"""Choose the bundled demo model's node settings on held-out frames, then its threshold.

    python -m demo.model.settings [--model models/demo/demo.onnx]

1. renders a held-out anomaly set from a world seed that is neither the demo drive's
   (seed 7 and the seeds a user renders) nor the test set's (seed 0):
   ``output/demo_selection/world<seed>`` (40 frames of the test-anomaly family, seed 11);
2. evaluates every score type × refinement variant there in one pass
   (``anomaly-seg evaluate --scores all --variants all``) and keeps the highest AP;
3. calibrates that setting's mask threshold at the best pixel F1 on the same frames
   (``anomaly-seg calibrate --best-f1``) and writes ``<model>.params.yaml``, which the node
   and ``make demo`` read as the model's defaults.

Nothing here sees the drive or the test set; the selection table is kept beside the YAML
as ``<model>.selection.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from anomaly_seg_ros.atomic import atomic_write_bytes
from anomaly_seg_ros.cli import main as anomaly_seg
from anomaly_seg_ros.errors import AnomalySegError
from anomaly_seg_ros.evaluation.calibration import PARAMS_NAMESPACE
from anomaly_seg_ros.evaluation.scoring import VARIANTS, ScoreSpec
from demo.synthetic.generate import generate

LOGGER = logging.getLogger(__name__)
#: World seed and size of the held-out selection set (not the drive's, not the test set's).
SELECTION_SEED = 11
SELECTION_FRAMES = 40
#: Node settings every candidate shares (the rest are the node's defaults).
BASE_SETTINGS = {"road_class": 0, "road_confidence": 0.9}


def selection_set(root: Path, seed: int = SELECTION_SEED, frames: int = SELECTION_FRAMES) -> Path:
    """The held-out anomaly frames, rendered once; returns their dataset folder."""
    world = root / f"world{seed}"
    manifest = world / "synthetic_world.json"
    if not (manifest.is_file() and json.loads(manifest.read_text()).get("anomaly") == frames):
        generate(world, 0, 0, frames, 0, seed, progress=False)
    return world / "anomaly"


def _params_file(path: Path, settings: dict[str, Any]) -> Path:
    import yaml

    document = {PARAMS_NAMESPACE: {"ros__parameters": settings}}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def select(model: Path, root: Path) -> tuple[ScoreSpec, dict[str, Any]]:
    """Evaluate every score × variant on the selection set; the best-AP spec and its row.

    :raises AnomalySegError: the evaluation failed.
    """
    dataset = selection_set(root)
    out = root / f"evaluation_{model.stem}"
    with tempfile.TemporaryDirectory() as scratch:
        params = _params_file(Path(scratch) / "base.yaml", BASE_SETTINGS)
        code = anomaly_seg([
            "evaluate", str(dataset), "--model", str(model), "--params", str(params),
            "--scores", "all", "--variants", "all", "--gallery", "0", "--no-progress",
            "--out", str(out),
        ])  # fmt: skip
    if code != 0:
        raise AnomalySegError(f"anomaly-seg evaluate on {dataset} failed (exit {code})")
    scores = json.loads((out / "results.json").read_text())["scores"]
    name = max(scores, key=lambda key: scores[key]["pixel"]["average_precision"])
    return ScoreSpec.parse(name), {
        "name": name,
        "table": out / "results.md",
        **scores[name]["pixel"],
    }


def write_settings(model: Path, root: Path) -> Path:
    """Select, calibrate and write ``<model>.params.yaml``; returns its path."""
    spec, row = select(model, root)
    LOGGER.info("selected %s (held-out AP %.4f)", row["name"], row["average_precision"])
    settings = {**BASE_SETTINGS, **VARIANTS[spec.variant], "score_type": spec.score_type}
    target = model.with_suffix(".params.yaml")
    with tempfile.TemporaryDirectory() as scratch:
        params = _params_file(Path(scratch) / "selected.yaml", settings)
        written = Path(scratch) / "calibrated.yaml"
        code = anomaly_seg([
            "calibrate", str(selection_set(root)), "--model", str(model), "--params",
            str(params), "--best-f1", "--no-progress", "--out", str(written),
        ])  # fmt: skip
        if code != 0:
            raise AnomalySegError(f"anomaly-seg calibrate for {model} failed (exit {code})")
        header = (
            f"# node settings of {model.name}, chosen by demo/model/settings.py on "
            f"{SELECTION_FRAMES} held-out frames of world seed {SELECTION_SEED} (not the drive, "
            f"not the test set): {row['name']} had the highest AP there "
            f"({100 * row['average_precision']:.2f} %)\n"
        )
        # written whole or not at all: the node reads this file as the model's defaults
        atomic_write_bytes(target, (header + written.read_text()).encode())
    table = Path(row["table"]).read_text()
    selection = (
        f"# Node settings of `{model.name}`: selection on held-out frames\n\n"
        f"Written by `python -m demo.model.settings`; selected **{row['name']}** "
        "(highest AP).\n\n" + table.split("\n", 2)[2]
    )
    atomic_write_bytes(model.with_suffix(".selection.md"), selection.encode())
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/demo/demo.onnx"))
    parser.add_argument("--root", type=Path, default=Path("output/demo_selection"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        path = write_settings(args.model, args.root)
    except AnomalySegError as error:
        LOGGER.error("%s", error)
        return 1
    LOGGER.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
