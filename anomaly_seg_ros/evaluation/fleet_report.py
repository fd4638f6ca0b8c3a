"""The fleet report: the single-bag report's files over all frames, plus per-bag figures.

Written into a temporary folder renamed to the report folder when complete:

* everything :func:`~anomaly_seg_ros.evaluation.report.write_report` writes
  (``results.json``, ``results.md``, curves, per-frame AP, objects by area) over the
  merged frames; ``results.md`` starts with ``N of M bags evaluated`` and the failures;
* ``bags.csv`` and ``fleet.json``: one row per bag (frames, AP, AUROC, FPR@95, obstacles
  found, false components per frame, wall and CPU seconds, frames/s, peak memory of the
  worker, which worker), the failures with reasons, the workers;
* ``gallery/``: the fleet's worst and best frames by AP, named ``<kind>_<rank>_<bag>_<stamp>``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anomaly_seg_ros.atomic import atomic_folder
from anomaly_seg_ros.evaluation.dataset_evaluation import EvaluationResult
from anomaly_seg_ros.evaluation.fleet_worker import BagDetails, BagFailure, BagState
from anomaly_seg_ros.evaluation.segmentation_metrics import SegmentationMetrics
from anomaly_seg_ros.io.bags import output_error

#: Bags listed as the worst (lowest AP).
WORST_BAGS = 5


@dataclass
class FleetResult:
    """The merged evaluation, with what each bag gave and what failed.

    :param result: the merged result (None when no bag was evaluated).
    :param states: pass-1 state per evaluated bag, by name.
    :param failures: bags not evaluated, with reasons.
    :param bags: every bag asked for, by name.
    :param seconds: wall time of the run.
    :param workers: each worker's ``host:pid`` and backend.
    :param cached: bags whose results came from the cache.
    """

    result: EvaluationResult | None
    states: dict[str, BagState]
    failures: list[BagFailure]
    bags: dict[str, Path]
    seconds: float
    workers: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    details: dict[str, BagDetails] = field(default_factory=dict)
    #: Wall seconds per phase: ``workers`` (actors started, model loaded), ``read``
    #: (pass 1), ``details`` (pass 2), ``report``.
    timings: dict[str, float] = field(default_factory=dict)
    #: The node's mask against the ground truth over all frames (2-class confusion).
    mask: SegmentationMetrics | None = None

    @property
    def complete(self) -> bool:
        """Whether every bag was evaluated."""
        return not self.failures and len(self.states) == len(self.bags)


def bag_rows(fleet: FleetResult) -> list[dict[str, Any]]:
    """One row of plain values per evaluated bag, in name order."""
    rows = []
    for name in sorted(fleet.states):
        state = fleet.states[name]
        objects = state.objects.evaluate()
        metrics = state.metrics
        details = fleet.details.get(name)
        seconds = state.seconds + (details.seconds if details else 0.0)
        rows.append(
            {
                "bag": name,
                "path": state.path,
                "frames": state.counts["frames"],
                "paired": state.counts["frames_with_label"],
                "malformed": state.counts["malformed"],
                "ap": metrics.average_precision if metrics else math.nan,
                "auroc": metrics.auroc if metrics else math.nan,
                "fpr_at_95_tpr": metrics.fpr_at_95_tpr if metrics else math.nan,
                "obstacles": objects.obstacles,
                "found": objects.found,
                "false_components_per_frame": objects.false_per_frame,
                "seconds": seconds,
                "cpu_seconds": state.cpu_seconds,
                "frames_per_second": state.counts["frames"] / state.seconds
                if state.seconds > 0
                else math.nan,
                "peak_rss_mb": state.peak_rss_mb,
                "worker": state.worker,
                "cached": name in fleet.cached,
            }
        )
    return rows


def _number(value: object, percent: bool = False, digits: int = 2) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{100 * value:.{digits}f}" if percent else f"{value:.{digits}f}"
    return str(value)


def fleet_markdown(fleet: FleetResult, rows: list[dict[str, Any]]) -> list[str]:
    """The fleet's lines of ``results.md``: status, failures, worst bags, per-bag table."""
    evaluated, total = len(fleet.states), len(fleet.bags)
    status = "complete" if fleet.complete else "**INCOMPLETE**"
    lines = [
        f"# Fleet evaluation: {evaluated} of {total} bags evaluated ({status})",
        "",
        f"{len(fleet.cached)} bags from the cache; {fleet.seconds:.1f} s on "
        f"{len(fleet.workers)} workers ({', '.join(fleet.workers)}).",
        "",
    ]
    if fleet.failures:
        lines += ["## Bags not evaluated", ""]
        lines += [f"* `{f.name}` ({f.path}): {f.reason}" for f in fleet.failures]
        lines += [
            "",
            "The component threshold was chosen over the bags of the first pass; bags that "
            "failed later are left out of every figure.",
            "",
        ]
    ranked = sorted((row for row in rows if math.isfinite(row["ap"])), key=lambda row: row["ap"])[
        :WORST_BAGS
    ]
    if ranked:
        lines += ["## Worst bags (AP)", ""]
        lines += [f"{i}. `{row['bag']}`: AP {_number(row['ap'], True)} %" for i, row in
                  enumerate(ranked, start=1)]  # fmt: skip
        lines.append("")
    header = (
        "| bag | frames | paired | AP % | AUROC % | FPR@95 % | found / obstacles | "
        "false / frame | s | CPU s | frames/s | peak MB | worker |"
    )
    lines += ["## Per bag", "", header, "|---" * 13 + "|"]
    for row in rows:
        cells = [
            f"`{row['bag']}`" + (" (cached)" if row["cached"] else ""),
            str(row["frames"]),
            str(row["paired"]),
            _number(row["ap"], True),
            _number(row["auroc"], True),
            _number(row["fpr_at_95_tpr"], True),
            f"{row['found']} / {row['obstacles']}",
            _number(row["false_components_per_frame"]),
            _number(row["seconds"], digits=1),
            _number(row["cpu_seconds"], digits=1),
            _number(row["frames_per_second"], digits=1),
            _number(row["peak_rss_mb"], digits=0),
            row["worker"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if fleet.mask is not None:
        iou = dict(zip(fleet.mask.class_names, fleet.mask.iou))
        lines += [
            "",
            "## The node's mask against the ground truth",
            "",
            f"At the node's operating point, over every paired frame (void ignored): IoU "
            f"anomaly {_number(iou['anomaly'], True)} %, in-distribution "
            f"{_number(iou['in-distribution'], True)} %, pixel accuracy "
            f"{_number(fleet.mask.pixel_accuracy, True)} %; confusion (rows ground truth "
            f"ID / anomaly, columns mask ID / anomaly): "
            f"{fleet.mask.confusion[:2, :2].tolist()}.",
        ]
    return [*lines, "", "# Over all evaluated frames", ""]


def write_fleet_report(fleet: FleetResult, out_dir: Path, gallery_size: int) -> Path:
    """Every report file, atomically (see the module docstring).

    :raises OutputError: a write fails (nothing is left).
    """
    from anomaly_seg_ros.evaluation.report import (
        _captioned,
        _plain,
        gallery_frames,
        results_markdown,
        write_png,
        write_report,
    )

    result = fleet.result
    assert result is not None
    result.settings.update(
        bags_total=len(fleet.bags),
        bags_evaluated=len(fleet.states),
        complete=fleet.complete,
        bags_failed={f.name: f.reason for f in fleet.failures},
    )
    rows = bag_rows(fleet)
    try:
        with atomic_folder(out_dir) as partial:
            partial.mkdir()
            write_report(result, partial)
            markdown = [*fleet_markdown(fleet, rows), results_markdown(result)]
            (partial / "results.md").write_text("\n".join(markdown))
            document = {
                "bags_total": len(fleet.bags),
                "bags_evaluated": len(fleet.states),
                "complete": fleet.complete,
                "failures": [vars(f) for f in fleet.failures],
                "bags": rows,
                "workers": fleet.workers,
                "seconds": fleet.seconds,
                "timings": fleet.timings,
                "mask": {**fleet.mask.to_dict(), "confusion": fleet.mask.confusion.tolist()}
                if fleet.mask
                else None,
            }
            text = json.dumps(_plain(document), indent=2, sort_keys=True)
            (partial / "fleet.json").write_text(text + "\n")
            stream = io.StringIO()
            writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
            (partial / "bags.csv").write_text(stream.getvalue())
            folder = partial / "gallery"
            starts, offset = {}, 0
            for name in sorted(fleet.states):
                starts[name] = offset
                offset += len(fleet.states[name].frames)
            for kind, rank, ap, index in gallery_frames(result, None, gallery_size):
                bag, _, stamp = result.frame_names[index].rpartition(":")
                details = fleet.details.get(bag)
                panel = details.panels.get(index - starts[bag]) if details else None
                if panel is None:
                    continue
                folder.mkdir(exist_ok=True)
                caption = f"{kind} {rank}: {bag} {stamp}  AP {100 * ap:.1f}"
                write_png(
                    folder / f"{kind}_{rank:02d}_{bag}_{stamp}.png", _captioned(panel, caption)
                )
    except BaseException as error:
        converted = output_error(error, f"report {out_dir}")
        if converted is error:
            raise
        raise converted from error
    return out_dir
