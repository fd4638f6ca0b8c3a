"""``anomaly-seg evaluate``: benchmark metrics of every score on an anomaly dataset.

One inference pass per frame yields all score types and refinement variants (or the
scores are read from saved ``.npy`` maps); the report (JSON, Markdown, curves, per-frame
AP, gallery) goes to ``--out``. On a Cityscapes-layout folder it measures the mIoU of the
Detector's labels instead.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from anomaly_seg_ros.commands.options import add_detector_options, detector_from_args
from anomaly_seg_ros.config import SCORE_TYPES, DetectorConfig
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.evaluation.protocol import EVAL_SIZES, EvaluationProtocol

if TYPE_CHECKING:
    from anomaly_seg_ros.datasets.anomaly import AnomalyDataset
    from anomaly_seg_ros.detector import Detector
    from anomaly_seg_ros.evaluation.frames import FrameScores

LOGGER = logging.getLogger(__name__)


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """Dataset flags shared by ``evaluate`` and ``calibrate``."""
    from anomaly_seg_ros.datasets.anomaly import LAYOUTS

    parser.add_argument(
        "--layout",
        default="auto",
        choices=("auto", *LAYOUTS),
        help="dataset layout (default: detected from the folders; an ambiguous folder is "
        "an error naming the candidates): "
        + "; ".join(f"{name}: {layout.datasets}" for name, layout in LAYOUTS.items()),
    )
    parser.add_argument("--limit", type=int, help="evaluate only the first N frames")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="AUROC/AP/FPR95 and SMIYC component metrics of every score on a dataset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "dataset",
        type=Path,
        help="dataset folder: Fishyscapes / Road Anomaly / SMIYC (anomaly metrics), or "
        "Cityscapes layout with leftImg8bit/ + gtFine/ (mIoU of the labels)",
    )
    parser.add_argument("--split", default="val", help="Cityscapes split (default: val)")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    add_detector_options(parser, overrides=False)
    add_dataset_arguments(parser)
    parser.add_argument(
        "--scores",
        default="all",
        help=f"comma-separated score types or 'all' ({', '.join(SCORE_TYPES)})",
    )
    parser.add_argument(
        "--variants",
        default="plain",
        help="comma-separated refinement variants: plain, refined, vde, refined+vde, or 'all'",
    )
    parser.add_argument("--mode", choices=("exact", "binned"), default="exact")
    parser.add_argument(
        "--skip-frames-without-anomaly",
        action="store_true",
        help="leave out frames whose label has no anomaly pixel (the Fishyscapes and "
        "Segment-Me-If-You-Can scripts do)",
    )
    parser.add_argument(
        "--eval-size",
        choices=EVAL_SIZES,
        default="label",
        help="label: scores resized (bilinear) to each label (default); network: labels "
        "resized by nearest neighbour to the network input, scores at network size",
    )
    parser.add_argument("--from-scores", type=Path, help="read saved score maps, no detector")
    parser.add_argument("--save-scores", type=Path, help="also save every score map (.npy)")
    parser.add_argument(
        "--track",
        choices=("anomaly", "obstacle"),
        default="anomaly",
        help="SMIYC size filters for component metrics (500/100 or 50/10 pixels)",
    )
    parser.add_argument("--no-components", action="store_true", help="skip component metrics")
    parser.add_argument("--gallery", type=int, default=4, help="worst/best frames to show")
    parser.add_argument("--gallery-score", help="score shown in the gallery (default: first)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (args.dataset / "leftImg8bit").is_dir():
        return run_segmentation(args)
    from anomaly_seg_ros.datasets.anomaly import AnomalyDataset
    from anomaly_seg_ros.evaluation.component_metrics import TRACK_SIZES
    from anomaly_seg_ros.evaluation.dataset_evaluation import evaluate_frames
    from anomaly_seg_ros.evaluation.frames import save_frame_scores
    from anomaly_seg_ros.evaluation.report import write_report

    dataset = AnomalyDataset(args.dataset, layout=args.layout)
    if args.limit:
        dataset.frames = dataset.frames[: args.limit]
    protocol = EvaluationProtocol(dataset.layout, args.skip_frames_without_anomaly, args.eval_size)
    skipped: list[str] = []
    settings: dict[str, object] = {
        "dataset_path": str(args.dataset),
        "layout": dataset.layout,
        "protocol": protocol.to_dict(),
        "frames_skipped_without_anomaly": skipped,
        "held_out_without_label": len(dataset.held_out),
    }
    with tempfile.TemporaryDirectory(prefix="anomaly-seg-eval-") as work_dir:
        with frame_source(args, dataset, settings, protocol, skipped) as (frames, names):
            if args.save_scores:
                frames = _saving(frames, args.save_scores, save_frame_scores)
            result = evaluate_frames(
                frames,
                names,
                dataset=dataset.name,
                mode=args.mode,
                work_dir=None if args.no_components else work_dir,
                component_sizes=TRACK_SIZES[args.track],
                total=len(dataset),
                progress=not args.no_progress,
            )
        if not result.frame_names:
            raise ConfigError(
                f"no frame of {args.dataset} has an anomaly pixel: nothing to evaluate "
                "(drop --skip-frames-without-anomaly to evaluate them all)"
            )
        result.settings.update(settings, mode=args.mode, track=args.track)
        by_name = {frame.name: frame for frame in dataset}
        write_report(
            result,
            args.out,
            cache=None if args.no_components else Path(work_dir),
            load_image=lambda name: by_name[name].load_image(),
            gallery_score=args.gallery_score,
            gallery_size=args.gallery,
        )
    LOGGER.info("report written to %s", args.out)
    sys.stdout.write((args.out / "results.md").read_text())  # the table is the answer
    return 0


def run_segmentation(args: argparse.Namespace) -> int:
    """Cityscapes layout: mIoU of the Detector's labels on ``--split`` (no anomaly labels)."""
    from anomaly_seg_ros.datasets.cityscapes import CityscapesDataset
    from anomaly_seg_ros.evaluation.segmentation_evaluation import (
        evaluate_segmentation,
        write_segmentation_report,
    )

    dataset = CityscapesDataset(args.dataset, split=args.split)
    detector, _ = open_detector(args)
    with detector:
        metrics = evaluate_segmentation(detector, dataset, args.limit, not args.no_progress)
        settings = {
            "dataset_path": str(args.dataset),
            "split": args.split,
            "model": str(args.model or "bundled"),
            "backend": detector.backend.describe(),
        }
    write_segmentation_report(metrics, args.out, f"{args.dataset.name}/{args.split}", settings)
    sys.stdout.write((args.out / "results.md").read_text())
    return 0


def _saving(
    frames: Iterable[FrameScores], folder: Path, save: Callable[[Path, FrameScores], None]
) -> Iterator[FrameScores]:
    """Pass frames through, saving each one's score maps on the way."""
    for frame in frames:
        save(folder, frame)
        yield frame


@contextlib.contextmanager
def frame_source(
    args: argparse.Namespace,
    dataset: AnomalyDataset,
    settings: dict[str, object],
    protocol: EvaluationProtocol | None = None,
    skipped: list[str] | None = None,
) -> Iterator[tuple[Iterator[FrameScores], list[str]]]:
    """Yield (frames, score names): saved score maps, or the detector (closed on exit).

    Records where the scores come from in ``settings`` (and the network input size).

    :param protocol: evaluation size and frame skipping, see
        :mod:`~anomaly_seg_ros.evaluation.protocol`.
    :param skipped: receives the names of the frames skipped for having no anomaly.
    """
    from anomaly_seg_ros.evaluation.frames import detector_frames, saved_frames, saved_score_names
    from anomaly_seg_ros.evaluation.scoring import VARIANTS, score_specs

    if args.from_scores:
        available = saved_score_names(args.from_scores)
        names = available if args.scores == "all" else _names(args.scores)
        missing = sorted(set(names) - set(available))
        if missing:
            raise ConfigError(f"scores {missing} not in {args.from_scores}: {available}")
        settings["scores_from"] = str(args.from_scores)
        yield saved_frames(args.from_scores, dataset, names, protocol, skipped), names
        return
    detector, base = open_detector(args)
    with detector:
        types = SCORE_TYPES if args.scores == "all" else _names(args.scores)
        variants = list(VARIANTS) if args.variants == "all" else _names(args.variants)
        specs = score_specs(types, variants, have_sml_stats=detector.sml_stats is not None)
        settings.update(
            model=str(args.model or "bundled"),
            backend=detector.backend.describe(),
            config=asdict(base),
            network_size=list(detector.info.input_size),
        )
        frames = detector_frames(detector, dataset, specs, base, protocol, skipped)
        yield frames, [spec.name for spec in specs]


def open_detector(args: argparse.Namespace) -> tuple[Detector, DetectorConfig]:
    """The Detector of ``--model/--backend/--params/--sml-stats`` and its base settings."""
    detector = detector_from_args(args)
    return detector, detector.config
