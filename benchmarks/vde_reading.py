"""VDE road region: the paper's row-span reading against the earlier column-seeded one.

Runs the bundled model (or ``--model``) once per frame of a labelled anomaly folder and
scores every frame with both readings of :func:`anomaly_seg_ros.refine.road_region`, for
each ``--score`` with VDE on and the other refinements as in ``--params``; prints AP and
FPR95 (exact pixel metrics) and the share of anomaly pixels each region leaves outside.
Use held-out frames (a world of another seed), never the demo drive or the test set:

    python -m training.synthetic.generate --out /tmp/heldout --train 0 --val 0 \\
        --anomaly 40 --ood-bank 0 --seed 23
    python benchmarks/vde_reading.py /tmp/heldout/anomaly --params models/demo/demo.params.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from anomaly_seg_ros import preprocess, refine
from anomaly_seg_ros.config import DetectorConfig, config_from_params_file
from anomaly_seg_ros.datasets.anomaly import AnomalyDataset
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.evaluation.pixel_metrics import ExactPixelEvaluator
from anomaly_seg_ros.models import default_model_path
from anomaly_seg_ros.scores import compute_score, max_softmax

READINGS = {"row span (paper)": False, "column-seeded (before)": True}


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
                name: refine.road_region(
                    summary.label,
                    confidence,
                    config.road_class,
                    config.road_confidence,
                    column_fill=column_fill,
                )
                for name, column_fill in READINGS.items()
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
                    final = refine.apply_road_region(
                        score, region, config.vde_inside_boost, config.vde_outside_penalty
                    )
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
