"""The demo command: a synthetic drive through the real detector node, with a report.

    python -m demo [--out output/demo] [--model M] [--frames 120] [--params node.yaml]
    anomaly-seg demo ...      (the same, from the checkout: the CLI delegates here)

Renders the drive into an MCAP rosbag, starts ``detector_node`` (ONNX Runtime, reliable
QoS, its own ROS domain), replays the bag into it over DDS frame by frame, records every
output and ``/diagnostics`` into a second bag and writes ``report/`` (Markdown + JSON,
MP4, contact sheet). Source checkout only (the drive comes from ``demo/synthetic``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from anomaly_seg_ros.errors import AnomalySegError, ConfigError
from demo.pipeline import DemoOptions, run_demo

LOGGER = logging.getLogger(__name__)
#: The command's one-line description (``--help``).
DESCRIPTION = __doc__.split("\n\n")[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("output/demo"), help="output folder")
    parser.add_argument("--model", type=Path, help="ONNX model (default: the bundled demo)")
    parser.add_argument("--frames", type=int, default=120, help="drive length in frames")
    parser.add_argument(
        "--size", type=int, nargs=2, metavar=("H", "W"), help="camera size (default: model's)"
    )
    parser.add_argument("--clip-frames", type=int, default=30, help="frames per scene")
    parser.add_argument("--step", type=float, default=0.4, help="metres driven per frame")
    parser.add_argument("--fps", type=float, default=10.0, help="frame rate of the stamps")
    parser.add_argument("--seed", type=int, default=7, help="drive seed")
    parser.add_argument("--params", type=Path, help="node parameters YAML (--params-file)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="node parameter override, e.g. --set score_type:=sml (repeatable)",
    )
    parser.add_argument("--domain-id", type=int, help="ROS domain (default: a random free one)")
    parser.add_argument("--frame-timeout", type=float, default=30.0, help="seconds per frame")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def node_overrides(pairs: Sequence[str]) -> dict[str, object]:
    """``NAME:=VALUE`` strings to a dict (values stay text; the node parses them).

    :raises ConfigError: a pair without ``:=``.
    """
    overrides: dict[str, object] = {}
    for pair in pairs:
        name, separator, value = pair.partition(":=")
        if not separator or not name:
            raise ConfigError(f"--set {pair!r}: write NAME:=VALUE, e.g. threshold:=1.5")
        overrides[name] = value
    return overrides


def run(args: argparse.Namespace) -> int:
    try:
        options = DemoOptions(
            out_dir=args.out,
            model=args.model,
            frames=args.frames,
            size=tuple(args.size) if args.size else None,
            clip_frames=args.clip_frames,
            step_m=args.step,
            fps=args.fps,
            seed=args.seed,
            params_file=args.params,
            node_parameters=node_overrides(args.set),
            domain_id=args.domain_id,
            frame_timeout=args.frame_timeout,
            progress=not args.no_progress,
        )
    except ConfigError as error:
        LOGGER.error("%s", error)
        return 2
    result = run_demo(options)
    report = result.report
    frames, latency = report["frames"], report["latency"]
    anomaly = report["metrics"]["anomaly"]
    miou = report["metrics"]["segmentation"]["miou"]
    verdict = "yes" if frames["equal"] else "NO"
    print(
        f"\nframes in = frames out: {verdict} ({frames['in']} in; "
        f"{min(frames['out'].values(), default=0)}..{max(frames['out'].values(), default=0)} "
        f"per output topic)\n"
        f"{latency['frames_per_second']:.2f} frames/s, round trip p50 "
        f"{latency['round_trip_ms']['p50']:.0f} ms; AP {anomaly['average_precision']:.3f}, "
        f"FPR95 {anomaly['fpr_at_95_tpr']:.3f}, mIoU {miou:.3f}"
    )
    for name in (
        "report_md",
        "report_json",
        "video",
        "contact_sheet",
        "drive_bag",
        "drive_frames",
        "output_bag",
        "node_log",
    ):
        print(f"  {name:14s} {result.files[name]}")
    return 0 if result.frames_equal else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m demo``: the command without the CLI registry."""
    parser = argparse.ArgumentParser(prog="python -m demo", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except AnomalySegError as error:
        LOGGER.error("%s", error)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
