"""``anomaly-seg calibrate-sml``: per-class max-logit statistics for Standardized Max Logits
from any exported model, on any backend, over a folder of frames without labels.

Every frame goes through the Detector's own preprocessing (resize, aspect policy,
normalisation) and backend; the statistics are taken per predicted class over the network
pixels that show the frame (letterbox padding left out) and written atomically to
``<model>.sml.json``, where the Detector finds them.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from anomaly_seg_ros.commands.options import add_detector_options, config_from_args

LOGGER = logging.getLogger(__name__)

#: Below this many pixels a class's mean/std is reported as unreliable.
FEW_PIXELS = 10_000


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "calibrate-sml",
        help="per-class max-logit statistics for score sml, from frames without labels",
        description=(
            "Run the model over in-distribution frames (ideally its own training frames) "
            "and write the per-predicted-class mean and std of the max logit that score "
            "sml needs, as <model>.sml.json (or --out)."
        ),
    )
    parser.add_argument("frames", nargs="+", type=Path, help="image files or folders")
    add_detector_options(
        parser, overrides=False, model_help="exported ONNX model (default: the bundled demo)"
    )
    parser.add_argument(
        "--max-frames", type=int, default=0, help="use at most this many, evenly spaced"
    )
    parser.add_argument("--out", type=Path, help="output JSON (default: <model>.sml.json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from anomaly_seg_ros.commands.detect import list_images
    from anomaly_seg_ros.commands.options import detector_from_args, model_from_args
    from anomaly_seg_ros.datasets.anomaly import read_rgb
    from anomaly_seg_ros.detector import default_sml_stats_path
    from anomaly_seg_ros.model.sml_stats import MaxLogitStatistics, save_sml_stats
    from anomaly_seg_ros.pipeline.preprocess import view_geometry

    model = model_from_args(args)
    paths = list_images(args.frames)
    if args.max_frames > 0 and len(paths) > args.max_frames:
        step = len(paths) / args.max_frames
        paths = [paths[int(i * step)] for i in range(args.max_frames)]
    out = args.out or default_sml_stats_path(model)
    config = config_from_args(args, model).replace(score_type="max_logit")
    with detector_from_args(args, config) as detector:
        info = detector.info
        statistics = MaxLogitStatistics(info.num_classes)
        for path in paths:
            rgb = read_rgb(path)
            summary = detector.detect(rgb).summary
            top, left, height, width = view_geometry(
                rgb.shape[:2], info.input_size, config.aspect
            ).network_box
            shown = (slice(top, top + height), slice(left, left + width))
            statistics.add(summary.max_logit[shown], summary.label[shown])
    mean, std, count = statistics.result()
    save_sml_stats(out, info.class_names, mean, std, count)
    unseen = [name for name, n in zip(info.class_names, count) if n == 0]
    few = [f"{name} ({n})" for name, n in zip(info.class_names, count) if 0 < n < FEW_PIXELS]
    if unseen:
        LOGGER.warning(
            "never predicted on these frames (mean 0, std 1: sml there is -max logit, "
            "not standardized): %s",
            ", ".join(unseen),
        )
    if few:
        LOGGER.warning(
            "fewer than %d pixels, statistics unreliable: %s", FEW_PIXELS, ", ".join(few)
        )
    print(
        f"wrote {out} ({len(paths)} frames, {int(count.sum())} pixels, "
        f"{int((count > 0).sum())} of {info.num_classes} classes predicted)"
    )
    return 0
