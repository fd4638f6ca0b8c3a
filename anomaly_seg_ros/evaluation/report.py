"""Evaluation report: JSON + Markdown tables, ROC/PR curves, per-frame AP, frame gallery.

Files written to the report folder:

* ``results.json`` — every metric of every score, settings, per-frame AP/AUROC (NaN → null);
* ``results.md`` — the results table (one row per score);
* ``roc.png``, ``pr.png`` — curves of all scores (matplotlib, Agg backend; every figure
  is skipped, with one warning line, when matplotlib is not installed);
* ``per_frame_ap.csv``, ``per_frame_ap.png`` — AP of every frame with anomalies;
* ``objects_by_area.png`` — obstacles found by obstacle area, where object-level figures
  were computed (see :mod:`~anomaly_seg_ros.evaluation.object_metrics`);
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
from typing import Any

import cv2
import numpy as np

from anomaly_seg_ros.evaluation.dataset_evaluation import (
    EvaluationResult,
    ScoreResult,
    cached_frame,
)
from anomaly_seg_ros.evaluation.protocol import protocol_line
from anomaly_seg_ros.pipeline.visualize import heat_colors, score_display_range

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
            "objects": score.objects.to_dict() if score.objects else None,
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


def frame_counts(result: EvaluationResult) -> dict[str, int]:
    """Frames in, paired with ground truth, unpaired, and ground truth without a frame.

    A bag evaluation records them in its settings (:mod:`~anomaly_seg_ros.evaluation.bag`);
    a dataset pairs images and labels by file name, so every frame it yields is paired.
    """
    keys = ("frames", "frames_with_label", "frames_without_label", "labels_without_frame")
    if "frames" in result.settings:
        return {key: int(result.settings[key]) for key in keys}  # type: ignore[call-overload]
    paired = len(result.frame_names)
    return dict(zip(keys, (paired, paired, 0, 0)))


def counts_line(counts: dict[str, int]) -> str:
    """``frames in: N, paired with ground truth: P, unpaired: U; ...`` (one line)."""
    return (
        f"frames in: {counts['frames']}, paired with ground truth: "
        f"{counts['frames_with_label']}, unpaired: {counts['frames_without_label']}; "
        f"ground-truth messages without a frame: {counts['labels_without_frame']}"
    )


def _percent(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.1f} %"


def object_lines(objects: dict[str, Any]) -> list[str]:
    """Markdown of the object-level figures, from :meth:`ObjectMetrics.to_dict` values.

    The demo report and ``results.md`` both render through here, from the same values.
    """
    per_frame = objects["false_components_per_frame"]
    min_area = int(objects["min_area"])
    dropped = f"components under {min_area} px dropped" if min_area > 1 else "no `min_area`"
    lines = [
        f"At the node's operating point (`score > {objects['threshold']:g}`, {dropped}; "
        f"obstacles under {objects['min_instance_size']} px void). An obstacle is found "
        "when its sIoU ≥ "
        f"{objects['found_siou']:g}; a predicted component is false when its PPV < "
        f"{objects['found_siou']:g} (Segment-Me-If-You-Can at τ = {objects['found_siou']:g}).",
        "",
        "| obstacles found (component recall) ↑ | false anomaly components per frame ↓ |",
        "|---:|---:|",
        f"| {objects['found']} / {objects['obstacles']} = "
        f"{_percent(objects['component_recall'])} | "
        f"{objects['false_components']} / {objects['frames']} frames = "
        + ("–" if per_frame is None or not math.isfinite(float(per_frame)) else f"{per_frame:.2f}")
        + " |",
        "",
        "| obstacle area | obstacles | found | found-rate |",
        "|---|---:|---:|---:|",
    ]
    for item in objects["by_area"]:
        high = item["high_px"]
        span = f"{item['low_px']}–{high} px" if high is not None else f"≥ {item['low_px']} px"
        lines.append(
            f"| {span} | {item['obstacles']} | {item['found']} | {_percent(item['found_rate'])} |"
        )
    return [*lines, ""]


def results_markdown(result: EvaluationResult) -> str:
    """The whole ``results.md``: counts, the table, object-level figures, bag facts."""
    lines = [
        f"# Anomaly evaluation: {result.dataset}",
        "",
        f"* {counts_line(frame_counts(result))}",
        *([f"* {line}"] if (line := protocol_line(result.settings)) else []),
        "",
        f"{len(result.frame_names)} frames, {result.mode} pixel metrics; all values in %. "
        "FPR@95 is the FPR at the highest threshold with TPR ≥ 95 %. Component metrics at "
        "each score's best-F1 threshold.",
        "",
        markdown_table(result),
    ]
    for name, score in result.scores.items():
        if score.objects is not None:
            values: dict[str, Any] = _plain(score.objects.to_dict())  # type: ignore[assignment]
            lines += [f"## Objects: {name}", "", *object_lines(values)]
    if "bag" in result.settings:
        lines += _bag_lines(result.settings)
    return "\n".join(lines)


def _bag_lines(settings: dict[str, object]) -> list[str]:
    return [
        "## Bag",
        "",
        f"* bag: `{settings['bag']}`; scores from `{settings['score_topic'] or 'detector'}`"
        f", ground truth `{settings['label_topic']}`",
        f"* malformed messages skipped: {settings.get('malformed', 0)}",
        "* metrics use the frames with ground truth; `timeline.png` shows every frame",
        "",
    ]


def write_report(
    result: EvaluationResult,
    out_dir: str | Path,
    cache: Path | None = None,
    load_image: Callable[[str], np.ndarray | None] | None = None,
    gallery_score: str | None = None,
    gallery_size: int = 4,
) -> Path:
    """Write every report file; the gallery needs the pass-1 ``cache`` and ``load_image``.

    :param gallery_score: score shown in the gallery (default: the first).
    :param gallery_size: worst and best frames shown each.
    :return: the report folder.
    """
    from anomaly_seg_ros.evaluation.plots import plot_curves, plot_found_by_area, plot_per_frame

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(
        json.dumps(result_dict(result), indent=2, sort_keys=True) + "\n"
    )
    (out_dir / "results.md").write_text(results_markdown(result))
    plot_curves(result, out_dir / "roc.png", out_dir / "pr.png")
    _write_per_frame_csv(result, out_dir / "per_frame_ap.csv")
    plot_per_frame(result, out_dir / "per_frame_ap.png")
    objects = {name: score.objects for name, score in result.scores.items() if score.objects}
    if objects:
        plot_found_by_area(objects, out_dir / "objects_by_area.png")
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


def gallery_frames(
    result: EvaluationResult, score_name: str | None = None, size: int = 4
) -> list[tuple[str, int, float, int]]:
    """The frames the gallery shows: ``size`` worst and best by AP of one score.

    :param score_name: the score (default: the first).
    :return: (``worst`` or ``best``, rank from 1, AP, frame index), worst first.
    """
    name = score_name or next(iter(result.scores))
    ranked = sorted(
        (frame.average_precision, index)
        for index, frame in enumerate(result.scores[name].frames)
        if math.isfinite(frame.average_precision)
    )
    chosen = (("worst", ranked[:size]), ("best", ranked[::-1][:size]))
    return [
        (kind, rank, ap, index)
        for kind, frames in chosen
        for rank, (ap, index) in enumerate(frames, start=1)
    ]


def write_gallery(
    result: EvaluationResult,
    folder: Path,
    cache: Path,
    load_image: Callable[[str], np.ndarray | None],
    score_name: str | None = None,
    size: int = 4,
) -> list[Path]:
    """PNG panels of the ``size`` worst and best frames (by AP) of one score.

    :param load_image: RGB image of a frame by name; None draws the panel on grey.
    :return: written files, worst first.
    """
    name = score_name or next(iter(result.scores))
    score_result = result.scores[name]
    threshold = score_result.component_threshold
    if threshold is None:
        threshold = float(score_result.pixel.best_f1_threshold)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, rank, ap, index in gallery_frames(result, name, size):
        frame_name = result.frame_names[index]
        score, label = cached_frame(cache, index, name)
        picture = load_image(frame_name)
        if picture is None:
            picture = np.full((*label.shape, 3), 64, np.uint8)
        elif picture.shape[:2] != label.shape:  # scored at network size (--eval-size network)
            picture = cv2.resize(picture, label.shape[::-1], interpolation=cv2.INTER_AREA)
        panel = frame_panel(picture, label, score, threshold)
        caption = f"{kind} {rank}: {frame_name}  {name}  AP {100 * ap:.1f}"
        path = folder / f"{kind}_{rank:02d}_{frame_name}.png"
        write_png(path, _captioned(panel, caption))
        written.append(path)
    return written


def write_png(path: Path, rgb: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 RGB image as PNG.

    Encoded in memory and written by Python, so a full disk raises ``OSError`` (ENOSPC)
    instead of ``cv2.imwrite``'s silent ``False``.

    :raises OSError: the file cannot be written.
    """
    encoded, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not encoded:
        raise OSError(f"cannot encode {path} as PNG")
    path.write_bytes(data.tobytes())
    return path


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
