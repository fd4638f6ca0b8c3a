"""``report.json`` (every figure, NaN written as null) and ``report.md`` (the same for people)
of a demo run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

REPORT_FORMAT = "anomaly_seg_ros/demo_report"
REPORT_VERSION = 1


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN/Infinity: write them as null, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def write_json(report: dict[str, Any], path: Path) -> Path:
    """Write ``report`` (with format and version keys) as strict JSON."""
    document = {"format": REPORT_FORMAT, "version": REPORT_VERSION, **report}
    path.write_text(json.dumps(_finite_or_none(document), indent=2, sort_keys=False) + "\n")
    return path


def _frames_section(frames: dict[str, Any]) -> list[str]:
    verdict = "**yes**" if frames["equal"] else "**NO**"
    lines = [
        "## Frames in = frames out",
        "",
        f"{frames['in']} camera frames published; every output topic has one message per "
        f"frame with the input's header stamp: {verdict}.",
        "",
        "| topic | messages | missing stamps | extra |",
        "|---|---:|---:|---:|",
    ]
    for topic, count in frames["out"].items():
        lines.append(
            f"| `{topic}` | {count} | {len(frames['missing'][topic])} | {frames['extra'][topic]} |"
        )
    if frames["timed_out"]:
        lines += ["", f"Frames whose outputs timed out: {len(frames['timed_out'])}."]
    return [*lines, ""]


def _metrics_section(metrics: dict[str, Any], threshold: float) -> list[str]:
    from anomaly_seg_ros.evaluation.report import counts_line, object_lines

    anomaly, mask, segmentation = metrics["anomaly"], metrics["mask"], metrics["segmentation"]
    lines = [
        "## Metrics against the drive's ground truth",
        "",
        f"Anomaly figures: the bag evaluation of the output bag ({counts_line(metrics['frames'])}"
        f"; {anomaly['num_positive']} anomalous and {anomaly['num_negative']} in-distribution "
        f"pixels, {anomaly['num_ignored']} void). One computation: `evaluation/results.md` "
        "renders the same result.",
        "",
        "| metric | value |",
        "|---|---:|",
        f"| anomaly AP ↑ | {_number(anomaly['average_precision'])} |",
        f"| anomaly FPR@95%TPR ↓ | {_number(anomaly['fpr_at_95_tpr'])} |",
        f"| anomaly AUROC ↑ | {_number(anomaly['auroc'])} |",
        f"| published mask precision / recall / IoU (node threshold {threshold}) | "
        f"{_number(mask['precision'])} / "
        f"{_number(mask['recall'])} / {_number(mask['iou'])} |",
        f"| semantic mIoU ↑ (classes present) | {_number(segmentation['miou'])} |",
        f"| semantic pixel accuracy ↑ | {_number(segmentation['pixel_accuracy'])} |",
        "",
    ]
    if metrics.get("objects"):
        lines += [
            "### Obstacles (object level, image components)",
            "",
            *object_lines(metrics["objects"]),
            "![obstacles found by area](evaluation/objects_by_area.png)",
            "",
        ]
    if metrics.get("ground_objects"):
        from anomaly_seg_ros.evaluation.bag_objects import objects_markdown

        lines += [
            "### Obstacles on the ground (3D ground truth)",
            "",
            *objects_markdown(metrics["ground_objects"])[2:],
            "",
            "Objects of the object layer on the recorded score (the node's code and default "
            "object settings; no road region in an output bag, so no on-road filter), "
            "matched on the ground to the world's obstacles. Left: contact sheet; right: "
            "confirmed objects against the ground truth from above, every frame.",
            "",
            "| contact sheet | bird's eye |",
            "|---|---|",
            "| ![contact sheet](contact_sheet.png) | ![bird's eye](evaluation/birds_eye.png) |",
            "",
        ]
    return [
        *lines,
        "ROC/PR curves, per-frame AP, component metrics, the anomaly timeline and a gallery "
        "of the best and worst frames are in `evaluation/` (`anomaly-seg bag evaluate`).",
        "",
    ]


def _latency_section(latency: dict[str, Any]) -> list[str]:
    trip = latency["round_trip_ms"]
    lines = [
        "## Latency and frame rate",
        "",
        f"Achieved **{_number(latency['frames_per_second'], 2)} frames/s** over "
        f"{_number(latency['wall_seconds'], 1)} s, one frame in flight at a time (each frame "
        "is published when every output of the previous one has arrived).",
        "",
        f"Round trip (publish → last output received, over DDS): p50 {_number(trip['p50'], 1)}"
        f" ms, p95 {_number(trip['p95'], 1)} ms, max {_number(trip['max'], 1)} ms.",
        "",
        "Per stage inside the node (its `/diagnostics`, last report):",
        "",
        "| stage | p50 ms | p95 ms |",
        "|---|---:|---:|",
    ]
    for stage, values in latency["stages_ms"].items():
        lines.append(
            f"| {stage} | {_number(values.get('p50'), 2)} | {_number(values.get('p95'), 2)} |"
        )
    rate = latency.get("node_output_rate_hz")
    lines += ["", f"Node-reported output rate: {rate} Hz." if rate else "", ""]
    return lines


def write_markdown(report: dict[str, Any], path: Path) -> Path:
    """Write the human-readable report."""
    drive, model, files = report["drive"], report["model"], report["files"]
    lines = [
        "# anomaly_seg_ros demo report",
        "",
        f"Model `{model['path']}` (input {model['input_size']}) on "
        f"{model.get('backend', 'n/a')}, score `{model.get('score_type', 'n/a')}`; "
        f"machine: {report['machine']}.",
        "",
        f"Drive: {drive['frames']} frames of {drive['height']}×{drive['width']} in "
        f"{drive['clips']} scenes (camera moving {drive['step_m']} m per frame at "
        f"{drive['fps']} Hz), anomalies on {100 * drive['anomaly_fraction']:.2f} % of the "
        "pixels on average.",
        "",
        f"Node (exit code {report['node']['exit_code']}, ROS_DOMAIN_ID "
        f"{report['node']['ros_domain_id']}):",
        "",
        f"    {report['node']['command']}",
        "",
        *_frames_section(report["frames"]),
        *_metrics_section(report["metrics"], report["node"]["threshold"]),
        *_latency_section(report["latency"]),
        "## Files",
        "",
        *[f"* {name}: `{location}`" for name, location in files.items()],
        "",
        "Phase times: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report["phases_s"].items())
        + ".",
        "",
    ]
    path.write_text("\n".join(lines))
    return path
