"""Report figures with matplotlib's Agg backend (no display needed, deterministic output)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from anomaly_seg_ros.config import SCORE_TYPES
from anomaly_seg_ros.evaluation.dataset_evaluation import EvaluationResult
from anomaly_seg_ros.optional import optional


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend, or None (one warning) when not installed:
    the report is then written without its figures."""
    matplotlib = optional("matplotlib", "the report's figures (*.png curves and charts)")
    if matplotlib is None:
        return None
    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _save(figure: object, path: Path) -> None:
    # No timestamps or software version in the PNG, so identical runs give identical files;
    # a tight box keeps the legend placed outside the axes.
    figure.savefig(  # type: ignore[attr-defined]
        path, dpi=100, metadata={"Software": None}, bbox_inches="tight"
    )


_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
_LINESTYLES = {"": "-", "refined": "--", "vde": ":", "refined+vde": "-."}


def _style(name: str) -> dict[str, str]:
    """Colour by score type, line style by refinement variant (``type+variant`` names)."""
    score_type, _, variant = name.partition("+")
    index = SCORE_TYPES.index(score_type) if score_type in SCORE_TYPES else len(SCORE_TYPES)
    color = _COLORS[index % len(_COLORS)]
    return {"color": color, "linestyle": _LINESTYLES.get(variant, "-")}


def _legend(axes: Any) -> None:
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))


def plot_curves(result: EvaluationResult, roc_path: Path, pr_path: Path) -> None:
    """ROC curves (log FPR axis) and precision-recall curves of every score."""
    pyplot = _pyplot()
    if pyplot is None:
        return
    roc_figure, roc = pyplot.subplots(figsize=(6.4, 4.8))
    pr_figure, pr = pyplot.subplots(figsize=(6.4, 4.8))
    for name, score in result.scores.items():
        curve = score.curve
        if curve.num_positive == 0 or curve.num_negative == 0:
            continue
        fpr = np.concatenate([[0.0], curve.fpr, [1.0]])
        tpr = np.concatenate([[0.0], curve.tpr, [1.0]])
        roc.plot(fpr, tpr, label=f"{name} ({100 * score.pixel.auroc:.1f})", **_style(name))
        recall = np.concatenate([[0.0], curve.tpr])
        precision = np.concatenate([[1.0], curve.precision])
        pr.step(
            recall,
            precision,
            where="pre",
            label=f"{name} ({100 * score.pixel.average_precision:.1f})",
            **_style(name),
        )
    roc.set_xscale("symlog", linthresh=1e-3)
    roc.set_xlim(0.0, 1.0)
    roc.set_xlabel("false positive rate")
    roc.set_ylabel("true positive rate")
    roc.set_title(f"ROC — {result.dataset} (AUROC %)")
    pr.set_xlim(0.0, 1.0)
    pr.set_ylim(0.0, 1.02)
    pr.set_xlabel("recall")
    pr.set_ylabel("precision")
    pr.set_title(f"Precision–recall — {result.dataset} (AP %)")
    for axes, figure, path in ((roc, roc_figure, roc_path), (pr, pr_figure, pr_path)):
        axes.grid(True, alpha=0.3)
        _legend(axes)
        _save(figure, path)
        pyplot.close(figure)


def plot_per_frame(result: EvaluationResult, path: Path) -> None:
    """AP of every frame with anomalies, one marker series per score."""
    pyplot = _pyplot()
    if pyplot is None:
        return
    width = min(16.0, max(6.4, 0.12 * len(result.frame_names)))
    figure, axes = pyplot.subplots(figsize=(width, 4.0))
    for name, score in result.scores.items():
        values = [frame.average_precision for frame in score.frames]
        index = [i for i, value in enumerate(values) if math.isfinite(value)]
        axes.plot(
            index,
            [values[i] for i in index],
            marker="o",
            markersize=3,
            linewidth=0.6,
            label=name,
            **_style(name),
        )
    axes.set_xlabel("frame (sorted by name)")
    axes.set_ylabel("AP")
    axes.set_ylim(0.0, 1.02)
    axes.set_title(f"Per-frame AP — {result.dataset}")
    axes.grid(True, alpha=0.3)
    _legend(axes)
    _save(figure, path)
    pyplot.close(figure)


def plot_timeline(entries: Sequence[Any], path: Path, title: str = "") -> None:
    """Anomaly area and score percentiles of every bag frame over time.

    :param entries: :class:`~anomaly_seg_ros.evaluation.bag.TimelineEntry` items in bag
        order; frames with ground truth are drawn as filled markers, others hollow.
    """
    pyplot = _pyplot()
    if pyplot is None:
        return
    figure, (area_axes, score_axes) = pyplot.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    if entries:
        start = entries[0].stamp_ns
        seconds = np.array([(entry.stamp_ns - start) * 1e-9 for entry in entries])
        labelled = np.array([entry.has_label for entry in entries])
        area = np.array([100 * entry.anomaly_fraction for entry in entries])
        area_axes.plot(seconds, area, color="tab:red", linewidth=1)
        area_axes.scatter(
            seconds[labelled], area[labelled], s=12, color="tab:red", label="with ground truth"
        )
        area_axes.scatter(
            seconds[~labelled],
            area[~labelled],
            s=12,
            facecolors="none",
            edgecolors="tab:gray",
            label="without ground truth",
        )
        for field, style in (("score_median", ":"), ("score_p99", "-"), ("score_max", "--")):
            values = [getattr(entry, field) for entry in entries]
            score_axes.plot(seconds, values, style, label=field.replace("score_", ""))
        area_axes.legend(fontsize="small", loc="upper right")
        score_axes.legend(fontsize="small", loc="upper right")
    area_axes.set_ylabel("anomaly area (%)")
    area_axes.set_title(f"Timeline — {title} ({len(entries)} frames)")
    score_axes.set_ylabel("anomaly score")
    score_axes.set_xlabel("time since first frame (s)")
    for axes in (area_axes, score_axes):
        axes.grid(True, alpha=0.3)
    figure.tight_layout()
    _save(figure, path)
    pyplot.close(figure)


def plot_found_by_area(objects: dict[str, Any], path: Path) -> None:
    """Found-rate of ground-truth obstacles per area bin, one bar series per score.

    :param objects: score name -> :class:`~anomaly_seg_ros.evaluation.object_metrics.
        ObjectMetrics`; each bar is annotated with found / obstacles.
    """
    pyplot = _pyplot()
    if pyplot is None:
        return
    figure, axes = pyplot.subplots(figsize=(6.4, 3.6))
    width = 0.8 / max(len(objects), 1)
    for offset, (name, metrics) in enumerate(objects.items()):
        positions = np.arange(len(metrics.bins)) + (offset - (len(objects) - 1) / 2) * width
        rates = [100 * b.found_rate if b.obstacles else 0.0 for b in metrics.bins]
        bars = axes.bar(positions, rates, width, label=name, color=_COLORS[offset % 6])
        for bar, item in zip(bars, metrics.bins):
            axes.annotate(
                f"{item.found}/{item.obstacles}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize="small",
            )
        axes.set_xticks(np.arange(len(metrics.bins)), [b.name for b in metrics.bins])
    axes.set_ylim(0.0, 110.0)
    axes.set_xlabel("obstacle area (pixels)")
    axes.set_ylabel("obstacles found (%)")
    first = next(iter(objects.values()), None)
    if first is not None:
        axes.set_title(f"Obstacles found at the node threshold (> {first.threshold:g})")
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(fontsize="small", loc="upper left")
    _save(figure, path)
    pyplot.close(figure)
