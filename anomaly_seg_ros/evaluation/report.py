"""Evaluation report: JSON + Markdown tables, ROC/PR curves, per-frame AP, frame gallery.

Files written to the report folder:

* ``results.json`` — every metric of every score, settings, per-frame AP/AUROC (NaN → null);
* ``results.md`` — the results table (one row per score);
* ``roc.png``, ``pr.png`` — curves of all scores (matplotlib, Agg backend);
* ``per_frame_ap.csv``, ``per_frame_ap.png`` — AP of every frame with anomalies;
* ``gallery/`` — the worst and best frames by AP for one score: image with ground truth
  (green outline, void dimmed) | score heat map | predicted mask (red) at the component
  threshold.

Everything is sorted or keyed by name, so two runs on the same input write the same files.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from anomaly_seg_ros.evaluation.dataset_evaluation import (
    EvaluationResult,
    ScoreResult,
    cached_frame,
)
from anomaly_seg_ros.visualize import heat_colors, score_display_range

_TABLE_COLUMNS: tuple[tuple[str, Callable[[ScoreResult], float]], ...] = (
    ("AUROC ↑", lambda r: r.pixel.auroc),
    ("AP ↑", lambda r: r.pixel.average_precision),
    ("FPR@95 ↓", lambda r: r.pixel.fpr_at_95_tpr),
    ("best F1 ↑", lambda r: r.pixel.best_f1),
    ("sIoU gt ↑", lambda r: r.component.siou_gt if r.component else float("nan")),
    ("PPV ↑", lambda r: r.component.ppv if r.component else float("nan")),
    ("mean F1 ↑", lambda r: r.component.f1_mean if r.component else float("nan")),
)


def _plain(value: object) -> object:
    """JSON-safe copy: NaN/inf → None, numpy scalars → Python, tuples → lists."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def result_dict(result: EvaluationResult) -> dict[str, object]:
    """The whole result as plain, JSON-serialisable data."""
    scores = {}
    for name, score in result.scores.items():
        scores[name] = {
            "pixel": score.pixel.to_dict(),
            "component": score.component.to_dict() if score.component else None,
            "component_threshold": score.component_threshold,
            "per_frame": [vars(frame) for frame in score.frames],
        }
    return _plain(
        {
            "dataset": result.dataset,
            "mode": result.mode,
            "num_frames": len(result.frame_names),
            "settings": result.settings,
            "scores": scores,
        }
    )  # type: ignore[return-value]


def markdown_table(result: EvaluationResult) -> str:
    """The results table in GitHub Markdown, values in percent like the papers."""
    header = "| score | " + " | ".join(name for name, _ in _TABLE_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(_TABLE_COLUMNS) + 1)]
    for name, score in result.scores.items():
        cells = []
        for _, read in _TABLE_COLUMNS:
            value = read(score)
            cells.append("–" if not math.isfinite(value) else f"{100 * value:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(
    result: EvaluationResult,
    out_dir: str | Path,
    cache: Path | None = None,
    load_image: Callable[[str], np.ndarray] | None = None,
    gallery_score: str | None = None,
    gallery_size: int = 4,
) -> Path:
    """Write every report file; the gallery needs the pass-1 ``cache`` and ``load_image``.

    :param gallery_score: score shown in the gallery (default: the first).
    :param gallery_size: worst and best frames shown each.
    :return: the report folder.
    """
    from anomaly_seg_ros.evaluation.plots import plot_curves, plot_per_frame

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(
        json.dumps(result_dict(result), indent=2, sort_keys=True) + "\n"
    )
    title = f"# Anomaly evaluation: {result.dataset}\n\n"
    summary = (
        f"{len(result.frame_names)} frames, {result.mode} pixel metrics; all values in %. "
        "FPR@95 is the FPR at the highest threshold with TPR ≥ 95 %. Component metrics at "
        "each score's best-F1 threshold.\n\n"
    )
    (out_dir / "results.md").write_text(title + summary + markdown_table(result))
    plot_curves(result, out_dir / "roc.png", out_dir / "pr.png")
    _write_per_frame_csv(result, out_dir / "per_frame_ap.csv")
    plot_per_frame(result, out_dir / "per_frame_ap.png")
    if cache is not None and load_image is not None and gallery_size > 0:
        write_gallery(result, out_dir / "gallery", cache, load_image, gallery_score, gallery_size)
    return out_dir


def _write_per_frame_csv(result: EvaluationResult, path: Path) -> None:
    names = list(result.scores)
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["frame", "num_anomalous", *(f"ap_{name}" for name in names)])
        for index, frame in enumerate(result.frame_names):
            rows = [result.scores[name].frames[index] for name in names]
            writer.writerow(
                [frame, rows[0].num_anomalous, *(f"{row.average_precision:.6f}" for row in rows)]
            )


def write_gallery(
    result: EvaluationResult,
    folder: Path,
    cache: Path,
    load_image: Callable[[str], np.ndarray],
    score_name: str | None = None,
    size: int = 4,
) -> list[Path]:
    """PNG panels of the ``size`` worst and best frames (by AP) of one score.

    :return: written files, worst first.
    """
    name = score_name or next(iter(result.scores))
    score_result = result.scores[name]
    ranked = sorted(
        (
            (frame.average_precision, index)
            for index, frame in enumerate(score_result.frames)
            if math.isfinite(frame.average_precision)
        ),
    )
    worst = ranked[:size]
    best = ranked[::-1][:size]
    threshold = score_result.component_threshold
    if threshold is None:
        threshold = float(score_result.pixel.best_f1_threshold)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, chosen in (("worst", worst), ("best", best)):
        for rank, (ap, index) in enumerate(chosen, start=1):
            frame_name = result.frame_names[index]
            score, label = cached_frame(cache, index, name)
            panel = frame_panel(load_image(frame_name), label, score, threshold)
            caption = f"{kind} {rank}: {frame_name}  {name}  AP {100 * ap:.1f}"
            path = folder / f"{kind}_{rank:02d}_{frame_name}.png"
            cv2.imwrite(str(path), cv2.cvtColor(_captioned(panel, caption), cv2.COLOR_RGB2BGR))
            written.append(path)
    return written


def frame_panel(
    rgb: np.ndarray, label: np.ndarray, score: np.ndarray, threshold: float
) -> np.ndarray:
    """(H, 3W, 3) uint8 RGB: ground truth | score heat map | predicted mask."""
    truth = rgb.copy()
    truth[label == 255] //= 3
    outline = cv2.morphologyEx((label == 1).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3)))
    truth[outline > 0] = (0, 255, 0)
    valid = score[label != 255] if np.any(label != 255) else score.ravel()
    heat = heat_colors(score, *score_display_range(valid, threshold))
    predicted = rgb.copy()
    mask = score > np.float32(threshold)
    predicted[mask] = (0.4 * predicted[mask] + 0.6 * np.array([255, 0, 0])).astype(np.uint8)
    predicted[outline > 0] = (0, 255, 0)
    return np.concatenate([truth, heat, predicted], axis=1)


def _captioned(panel: np.ndarray, caption: str) -> np.ndarray:
    bar = np.full((28, panel.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(bar, caption, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, panel], axis=0)
