"""Build the report of a finished replay from its two bags: frame counts, metrics, video,
contact sheet, latency; then ``report.json`` and ``report.md``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anomaly_seg_ros.model.sidecar import ModelInfo
from demo.drive import DriveSpec
from demo.drive_bag import ANOMALY_TOPIC, CAMERA_TOPIC, DriveBagSummary
from demo.latency import recorded_diagnostics, summarize_latency
from demo.media import (
    VideoWriter,
    contact_sheet,
    frame_panel,
    score_range,
    sheet_indices,
)
from demo.report import write_json, write_markdown
from demo.results import (
    LABELS,
    MASK,
    OVERLAY,
    SCORE,
    DriveMetrics,
    count_frames,
    output_frames,
    read_truth,
)


@dataclass(frozen=True)
class RunFacts:
    """What the pipeline knows about the run when the report is built.

    :param model: model file.
    :param info: its sidecar.
    :param spec: the drive that was rendered.
    :param drive: what the drive bag holds.
    :param record: the replay's ``LockstepRecord`` (send/arrival times, timeouts).
    :param node_exit_code: the node's exit code after SIGINT (0 = clean).
    :param domain_id: ROS domain used.
    :param output_topics: the node's image output topics.
    :param node_prefix: their common prefix (``/anomaly_seg_detector``).
    :param node_command: the node's command line.
    :param threshold: the node's mask threshold (evaluation timeline, object figures).
    :param min_area: the node's ``min_area`` (the same).
    :param machine: one line about the machine.
    :param sheet_rows: frames on the contact sheet.
    """

    model: Path
    info: ModelInfo
    spec: DriveSpec
    drive: DriveBagSummary
    record: Any
    node_exit_code: int | None
    domain_id: int
    output_topics: tuple[str, ...]
    node_prefix: str
    node_command: str
    threshold: float
    machine: str
    min_area: int = 0
    sheet_rows: int = 6


def _media(
    files: dict[str, Path],
    facts: RunFacts,
    truth: dict[int, tuple[np.ndarray, np.ndarray]],
    topics: dict[str, str],
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Metrics (first pass), then video and contact sheet on one colour scale (second)."""
    metrics = DriveMetrics(facts.info.class_names)
    samples = []
    for frame in output_frames(files["output_bag"], topics, truth):
        metrics.process(frame)
        samples.append(frame.score[::4, ::4])
    scale = score_range(samples, facts.threshold) if samples else (0.0, 1.0)
    report_dir = files["report"]
    written = {
        "video": report_dir / "overlay.mp4",
        "contact_sheet": report_dir / "contact_sheet.png",
    }
    video = VideoWriter(written["video"], facts.spec.fps)
    wanted = set(sheet_indices(facts.drive.frames, facts.sheet_rows))
    panels = []
    record = facts.record
    try:
        for frame in output_frames(files["output_bag"], topics, truth):
            arrivals = [topic.get(frame.stamp_ns) for topic in record.arrivals.values()]
            sent = record.sent_ns.get(frame.stamp_ns)
            trip = (
                f"{(max(arrivals) - sent) / 1e6:.0f} ms"
                if sent is not None and arrivals and None not in arrivals
                else "n/a"
            )
            caption = (
                f"frame {frame.index + 1}/{facts.drive.frames}  scene "
                f"{frame.index // facts.spec.clip_frames + 1}  round trip {trip}"
            )
            panel = frame_panel(frame, scale, caption)
            video.add(panel)
            if frame.index in wanted:
                panels.append(panel)
    finally:
        video.close()
    contact_sheet(panels, written["contact_sheet"])
    summary = metrics.summary()
    summary["score_color_range"] = list(scale)
    return summary, written


def _bag_evaluation(files: dict[str, Path], facts: RunFacts) -> dict[str, Any]:
    """The toolkit's full bag evaluation (``anomaly-seg bag evaluate``) of the output bag.

    :return: its figures for ``report.json``: the same result ``evaluation/results.md``
        renders (frame counts, pixel metrics, object-level figures).
    """
    from anomaly_seg_ros.evaluation.bag import evaluate_bag
    from anomaly_seg_ros.evaluation.report import frame_counts

    result = evaluate_bag(
        files["output_bag"],
        files["evaluation"],
        score_topic=f"{facts.node_prefix}/{SCORE}",
        label_topic=ANOMALY_TOPIC,
        label_bag=files["drive_bag"],
        image_topic=CAMERA_TOPIC,
        threshold=facts.threshold,
        min_area=facts.min_area,
        progress=False,
    )
    score = result.scores[SCORE]
    return {
        "source": str(files["evaluation"] / "results.json"),
        "frames": frame_counts(result),
        "anomaly": score.pixel.to_dict(),
        "objects": score.objects.to_dict() if score.objects else None,
        "objects_plot": str(files["evaluation"] / "objects_by_area.png"),
        "ground_objects": result.settings.get("ground_objects"),
    }


def build_report(
    files: dict[str, Path], facts: RunFacts, phases: dict[str, float], started: float
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Read the bags back, write every report file; returns (report dict, files written).

    :param files: ``drive_bag``, ``output_bag``, ``node_log``, ``report`` (a folder).
    :param phases: seconds per phase so far (the report phase is added).
    :param started: ``time.monotonic()`` when the report phase began.
    """
    counts = count_frames(
        files["drive_bag"], CAMERA_TOPIC, files["output_bag"], facts.output_topics
    )
    truth = read_truth(files["drive_bag"])
    topics = {name: f"{facts.node_prefix}/{name}" for name in (SCORE, LABELS, MASK, OVERLAY)}
    evaluation = _bag_evaluation(files, facts)
    metrics, written = _media(files, facts, truth, topics)
    metrics = {**evaluation, **metrics}
    diagnostics = recorded_diagnostics(str(files["output_bag"]), f"{facts.node_prefix}:")
    latency = summarize_latency(facts.record.sent_ns, facts.record.arrivals, diagnostics)
    node = latency.node
    written["report_md"] = files["report"] / "report.md"
    written["report_json"] = files["report"] / "report.json"
    phases = {**phases, "report": time.monotonic() - started}
    report = {
        "model": {
            "path": str(facts.model),
            "input_size": f"{facts.info.input_height}x{facts.info.input_width}",
            "backend": node.get("backend", ""),
            "score_type": node.get("score_type", ""),
        },
        "drive": {
            "bag": str(files["drive_bag"]),
            "frames": facts.drive.frames,
            "clips": facts.drive.clips,
            "height": facts.drive.height,
            "width": facts.drive.width,
            "fps": facts.spec.fps,
            "step_m": facts.spec.step_m,
            "seed": facts.spec.seed,
            "anomaly_fraction": facts.drive.anomaly_fraction,
            "topics": facts.drive.topics,
        },
        "frames": {
            "in": counts.frames_in,
            "out": counts.frames_out,
            "equal": counts.equal and not facts.record.timed_out,
            "missing": counts.missing,
            "extra": counts.extra,
            "timed_out": list(facts.record.timed_out),
        },
        "metrics": metrics,
        "latency": {
            "frames_per_second": latency.frames_per_second,
            "wall_seconds": latency.wall_seconds,
            "round_trip_ms": latency.percentiles(),
            "stages_ms": latency.stages_ms,
            "node_output_rate_hz": node.get("output_rate_hz"),
        },
        "node": {
            **node,
            "command": facts.node_command,
            "threshold": facts.threshold,
            "exit_code": facts.node_exit_code,
            "ros_domain_id": facts.domain_id,
        },
        "machine": facts.machine,
        "phases_s": phases,
        "files": {name: str(path) for name, path in {**files, **written}.items()},
    }
    write_json(report, written["report_json"])
    write_markdown(report, written["report_md"])
    return report, written
