"""``anomaly-seg calibrate``: choose the mask threshold on a labelled validation set.

Runs the detector with the node's settings (``--params``) over the dataset, or reads
saved score maps, and writes the threshold reaching ``--target-tpr`` (or staying within
``--target-fpr``, or of the best pixel F1 with ``--best-f1``) into a ROS 2 parameters
YAML the node loads with ``--params-file``.
The threshold is pixel-level: the node's ``min_area`` filter is applied after it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from anomaly_seg_ros.commands.evaluate import add_dataset_arguments, open_detector
from anomaly_seg_ros.commands.options import add_detector_options
from anomaly_seg_ros.config import SCORE_TYPES
from anomaly_seg_ros.errors import ConfigError

LOGGER = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="pick the mask threshold for a target TPR or FPR and write a params YAML",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset", type=Path, help="validation dataset folder (labelled)")
    parser.add_argument("--out", type=Path, required=True, help="parameters YAML to write")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-tpr", type=float, help="e.g. 0.95: find 95 %% of anomalies")
    target.add_argument("--target-fpr", type=float, help="e.g. 0.01: 1 %% false alarms")
    target.add_argument(
        "--best-f1", action="store_true", help="the threshold of the highest pixel F1"
    )
    parser.add_argument(
        "--score",
        help=f"score type ({', '.join(SCORE_TYPES)}; default: --params' score_type); with "
        "--from-scores, a saved score name such as max_logit+refined",
    )
    parser.add_argument("--from-scores", type=Path, help="read saved score maps, no detector")
    add_detector_options(parser, overrides=False)
    add_dataset_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from anomaly_seg_ros.datasets.anomaly import AnomalyDataset
    from anomaly_seg_ros.evaluation.calibration import calibrate, write_params
    from anomaly_seg_ros.evaluation.frames import saved_frames
    from anomaly_seg_ros.evaluation.pixel_metrics import ExactPixelEvaluator
    from anomaly_seg_ros.evaluation.scoring import VARIANTS, ScoreSpec

    dataset = AnomalyDataset(args.dataset, layout=args.layout)
    if args.limit:
        dataset.frames = dataset.frames[: args.limit]
    evaluator = ExactPixelEvaluator()
    progress = {"total": len(dataset), "unit": "frame", "disable": args.no_progress}
    extra: dict[str, object] = {}
    if args.from_scores:
        if not args.score:
            raise ConfigError("--from-scores needs --score: the saved score name to calibrate")
        spec = ScoreSpec.parse(args.score)
        # The node must apply the refinement this score was measured with.
        extra.update(VARIANTS[spec.variant])
        for frame in tqdm(saved_frames(args.from_scores, dataset, [args.score]), **progress):
            evaluator.process(frame.scores[args.score], frame.label)
        score_type = spec.score_type
    else:
        detector, base = open_detector(args)
        with detector:
            if args.score:
                detector.config = base.replace(score_type=args.score)
            score_type = detector.config.score_type
            for index in tqdm(range(len(dataset)), desc="calibrate", **progress):
                rgb, label = dataset.read(index)
                # The node's own score: same Detector, same settings, camera resolution.
                evaluator.process(detector.detect(rgb).score, label)
    calibration = calibrate(evaluator, score_type, args.target_tpr, args.target_fpr, args.best_f1)
    base_params = args.params if args.params else None
    write_params(args.out, calibration, base=base_params, extra=extra)
    sys.stdout.write(
        f"{score_type}: threshold {calibration.threshold!r} (anomalous when score > threshold)"
        f" -> TPR {calibration.tpr:.4f}, FPR {calibration.fpr:.6f}; written to {args.out}\n"
    )
    return 0
