"""``anomaly-seg bag evaluate BAG``: metrics and timeline of a recorded bag.

Reads the node's ``…/anomaly_score`` (32FC1) from an output bag, or with
``--run-detector`` runs the detector on the camera topic of an input bag. With
``--label-topic`` (mono8 0/1/255, paired by header stamp) the paired frames get the
``anomaly-seg evaluate`` metrics and report; every frame enters ``timeline.png``, and
frames without ground truth are counted in the report.

``add_arguments`` and ``run`` are meant for the ``bag`` command group
(``commands/bag.py``); ``register`` adds a stand-alone ``bag-evaluate`` command.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from anomaly_seg_ros.commands.evaluate import add_detector_arguments, open_detector

LOGGER = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``bag evaluate`` (sets ``func``)."""
    parser.add_argument("bag", type=Path, help="rosbag2 folder or file (sqlite3 or MCAP)")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--label-topic", help="ground truth, mono8 0/1/255 (optional)")
    parser.add_argument(
        "--label-bag",
        type=Path,
        help="bag holding --label-topic when BAG lacks it (e.g. the input bag of `bag run`)",
    )
    parser.add_argument("--score-topic", help="32FC1 score topic (default: …/anomaly_score)")
    parser.add_argument("--image-topic", help="camera topic (Image or CompressedImage)")
    parser.add_argument(
        "--run-detector", action="store_true", help="run the detector on the camera topic"
    )
    add_detector_arguments(parser)
    parser.add_argument(
        "--threshold",
        type=float,
        help="mask threshold for the area timeline (default: --params' threshold)",
    )
    parser.add_argument("--mode", choices=("exact", "binned"), default="exact")
    parser.add_argument(
        "--stamp-tolerance", type=float, default=0.0, help="max label/frame stamp gap, s"
    )
    parser.add_argument("--track", choices=("anomaly", "obstacle"), default="anomaly")
    parser.add_argument("--gallery", type=int, default=4, help="worst/best frames to show")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bag-evaluate",
        help="metrics and timeline of a recorded bag (with optional ground truth)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from anomaly_seg_ros.config import DetectorConfig, config_from_params_file
    from anomaly_seg_ros.evaluation.bag import evaluate_bag
    from anomaly_seg_ros.evaluation.component_metrics import TRACK_SIZES

    options = {
        "score_topic": args.score_topic,
        "label_topic": args.label_topic,
        "label_bag": args.label_bag,
        "image_topic": args.image_topic,
        "mode": args.mode,
        "stamp_tolerance": args.stamp_tolerance,
        "component_sizes": TRACK_SIZES[args.track],
        "gallery_size": args.gallery,
        "progress": not args.no_progress,
    }
    if args.run_detector:
        detector, base = open_detector(args)
        with detector:
            if args.threshold is not None:
                detector.config = base.replace(threshold=args.threshold)
            result = evaluate_bag(args.bag, args.out, detector=detector, **options)
    else:
        config = config_from_params_file(str(args.params)) if args.params else DetectorConfig()
        threshold = config.threshold if args.threshold is None else args.threshold
        result = evaluate_bag(args.bag, args.out, threshold=threshold, **options)
    LOGGER.info("report written to %s", args.out)
    settings = result.settings
    sys.stdout.write(
        f"{settings['frames']} frames, {settings['frames_with_label']} with ground truth, "
        f"{settings['frames_without_label']} without; {settings['labels_without_frame']} "
        f"labels without a frame\n" + (args.out / "results.md").read_text()
    )
    return 0
