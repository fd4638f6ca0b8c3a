"""``anomaly-seg fleet``: evaluate many bags on Ray, merged into one report.

    anomaly-seg fleet evaluate BAG|FOLDER|GLOB... OUT_DIR --label-topic T [--model M]
        [--address HOST:PORT] [--workers N] [--gpus-per-worker G] [--cache DIR]

Exit status: 0 every bag evaluated; 3 some bags failed (the report says which and why,
``N of M bags evaluated``); 1 nothing evaluated or bad input. Ray is imported only when
the command runs (see docs/fleet.md).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from anomaly_seg_ros.commands.options import (
    add_detector_options,
    config_from_args,
    model_from_args,
)
from anomaly_seg_ros.errors import ConfigError

LOGGER = logging.getLogger(__name__)

#: Exit status of a run that evaluated some bags but not all.
EXIT_INCOMPLETE = 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "fleet",
        help="evaluate many bags on Ray (a local cluster, or --address)",
        description="Fleet evaluation: many recorded drives on a Ray cluster.",
    )
    actions = parser.add_subparsers(dest="fleet_action", metavar="ACTION", required=True)
    evaluate = actions.add_parser(
        "evaluate",
        help="bags (paths, folders, globs) evaluated on Ray workers, merged into one report",
        description="Evaluate many bags as `bag evaluate` does one: each on a Ray worker "
        "that loads the model once; the merged report has the figures over all frames, "
        "a per-bag table, the worst bags and frames, per-bag timing, and the bags that "
        "failed with their reasons. Per-bag results are cached: a rerun resumes.",
    )
    evaluate.add_argument("inputs", nargs="+", help="bags, folders holding bags, or quoted globs")
    evaluate.add_argument("out_dir", type=Path, help="report folder (must not exist)")
    evaluate.add_argument("--label-topic", required=True, help="mono8 ground-truth topic")
    evaluate.add_argument("--score-topic", help="32FC1 score topic (default: *anomaly_score)")
    evaluate.add_argument("--image-topic", help="camera topic (model input, gallery)")
    add_detector_options(
        evaluate,
        model_help="run this model on the bags' images (else: recorded scores)",
        only_with_model=True,
        threshold_help="mask threshold for the object figures",
    )
    evaluate.add_argument("--mode", choices=("exact", "binned"), default="exact")
    evaluate.add_argument(
        "--stamp-tolerance", type=float, default=0.0, help="seconds labels may be off"
    )
    evaluate.add_argument(
        "--address", help="Ray cluster to join (host:port, ray://host:port, auto)"
    )
    evaluate.add_argument("--workers", type=int, help="workers (default: the cluster's CPUs)")
    evaluate.add_argument(
        "--gpus-per-worker",
        type=float,
        help="GPUs per worker (default: 1 when the cluster has GPUs and --model is given)",
    )
    evaluate.add_argument("--cache", type=Path, help="per-bag result cache (OUT_DIR.cache)")
    evaluate.add_argument("--gallery-size", type=int, default=4, help="worst/best frames")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")
    evaluate.set_defaults(func=evaluate_command)


def evaluate_command(args: argparse.Namespace) -> int:
    from anomaly_seg_ros.evaluation.fleet import evaluate_fleet
    from anomaly_seg_ros.evaluation.fleet_inputs import find_bags
    from anomaly_seg_ros.evaluation.fleet_worker import FleetSettings, ModelPackage

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    if args.out_dir.exists():
        raise ConfigError(f"report folder {args.out_dir} already exists; choose a new path")
    bags = find_bags(args.inputs)
    config = config_from_args(args, model_from_args(args))
    settings = FleetSettings(
        label_topic=args.label_topic,
        score_topic=args.score_topic,
        image_topic=args.image_topic,
        threshold=config.threshold,
        min_area=config.min_area,
        mode=args.mode,
        stamp_tolerance=args.stamp_tolerance,
    )
    model = (
        ModelPackage.from_path(args.model, config, args.backend, args.sml_stats)
        if args.model
        else None
    )
    fleet = evaluate_fleet(
        bags,
        args.out_dir,
        settings,
        model,
        address=args.address,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        cache_dir=args.cache,
        gallery_size=args.gallery_size,
        progress=not args.no_progress,
    )
    line = f"{len(fleet.states)} of {len(fleet.bags)} bags evaluated; report in {args.out_dir}"
    if fleet.complete:
        LOGGER.info("%s", line)
        return 0
    LOGGER.error("%s", line)
    for failure in fleet.failures:
        LOGGER.error("  %s: %s", failure.name, failure.reason)
    return EXIT_INCOMPLETE
