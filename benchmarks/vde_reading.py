"""VDE road region: the paper's row-span reading against the earlier column-seeded one.

Runs the bundled model (or ``--model``) once per frame of a labelled anomaly folder and
scores every frame with both readings of the road region (the package's
:func:`anomaly_seg_ros.pipeline.refine.road_region`, and :func:`column_seeded_region` here), for
each ``--score`` with VDE on and the other refinements as in ``--params``; prints AP and
FPR95 (exact pixel metrics) and the share of anomaly pixels each region leaves outside.
Use held-out frames (a world of another seed), never the demo drive or the test set:

    python -m demo.synthetic.generate --out /tmp/heldout --train 0 --val 0 \\
        --anomaly 40 --ood-bank 0 --seed 23
    python benchmarks/vde_reading.py /tmp/heldout/anomaly --params models/demo/demo.params.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from anomaly_seg_ros.config import DetectorConfig, config_from_params_file
from anomaly_seg_ros.datasets.anomaly import AnomalyDataset
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.evaluation.pixel_metrics import ExactPixelEvaluator
from anomaly_seg_ros.model.bundled import default_model_path
from anomaly_seg_ros.pipeline import preprocess, refine
from anomaly_seg_ros.pipeline.scores import compute_score, max_softmax
from anomaly_seg_ros.refinement_spec import RoadRegion


def column_seeded_region(
    labels: np.ndarray, confidence: np.ndarray, road_class: int, min_confidence: float
) -> np.ndarray:
    """The earlier, narrower reading of the road region: the row span, and a seed above
    the pixel in its column (a top-down fill before the row erosion). It puts obstacles
    at the far or side edge of the road outside the region.

    :return: (H, W) bool.
    """
    region = refine.road_region(labels, confidence, road_class, min_confidence)
    seeds = (labels == road_class) & (confidence >= np.float32(min_confidence))
    height = seeds.shape[0]
    # First seed row of every column (height where a column has none). argmax along a
    # contiguous axis stops at the first True, so transpose first.
    by_column = cv2.transpose(seeds.view(np.uint8)).view(bool)
    top = np.where(by_column.any(axis=1), np.argmax(by_column, axis=1), height)
    region &= np.arange(height)[:, None] >= top[None, :]
    return region


READINGS = {"row span (paper)": refine.road_region, "column-seeded (before)": column_seeded_region}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="labelled anomaly folder (held-out frames)")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--params", type=Path, default=None, help="node parameters YAML")
    parser.add_argument("--scores", nargs="+", default=["entropy", "max_logit"])
    args = parser.parse_args()
    config = config_from_params_file(str(args.params)) if args.params else DetectorConfig()
    config = config.replace(vde=True)
    dataset = AnomalyDataset(args.dataset)
    model = args.model or default_model_path()
    evaluators = {(s, r): ExactPixelEvaluator() for s in args.scores for r in READINGS}
    outside = dict.fromkeys(READINGS, 0)
    anomalous = 0
    with Detector.from_path(model, config.replace(vde=False)) as detector:
        mean, std = detector.sml_stats if detector.sml_stats is not None else (None, None)
        unrefined = config.replace(vde=False)
        for frame in dataset:
            label = frame.load_label()
            summary = detector.detect(frame.load_image()).summary
            confidence = max_softmax(summary)
            regions = {
                name: reading(summary.label, confidence, config.road_class, config.road_confidence)
                for name, reading in READINGS.items()
            }
            positive = label == 1
            anomalous += int(positive.sum())
            for name, region in regions.items():
                at_label = preprocess.resize_labels(region.view(np.uint8), label.shape)
                outside[name] += int((positive & (at_label == 0)).sum())
            for score_type in args.scores:
                score = compute_score(score_type, summary, mean, std)
                score = refine.refine_score(score, summary, unrefined, detector.strip_pool)
                for name, region in regions.items():
                    road = RoadRegion.from_config(config)
                    drop = road.outside_drop(refine.score_spread(score))
                    final = refine.apply_road_region(score, region, drop)
                    final = preprocess.resize_score(final, label.shape)
                    evaluators[score_type, name].process(final, label)
    print(f"{len(dataset)} frames of {args.dataset}, model {model}")
    print("| score | VDE reading | AP | FPR95 | anomaly pixels outside the region |")
    print("|---|---|---|---|---|")
    for (score_type, name), evaluator in evaluators.items():
        metrics = evaluator.evaluate()
        print(
            f"| {score_type} + VDE | {name} | {metrics.average_precision:.3f} | "
            f"{metrics.fpr_at_95_tpr:.3f} | {100 * outside[name] / max(1, anomalous):.1f} % |"
        )


if __name__ == "__main__":
    main()
