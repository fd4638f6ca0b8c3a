"""The evaluator interface: every metric is an Evaluator, created by name, grouped."""

import numpy as np
import pytest

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.component_metrics import ComponentMetrics
from anomaly_seg_ros.evaluation.evaluator import Evaluator, EvaluatorGroup
from anomaly_seg_ros.evaluation.factory import EVALUATORS, create_evaluator, pixel_metrics
from anomaly_seg_ros.evaluation.segmentation_metrics import SegmentationMetrics

SCORE = np.array([[0.1, 0.2], [0.8, 0.9]], np.float32)
LABEL = np.array([[0, 0], [1, 1]], np.uint8)


def test_factory_knows_every_kind_and_lists_them_when_wrong():
    assert set(EVALUATORS) == {"exact", "binned", "segmentation", "component"}
    for kind, cls in EVALUATORS.items():
        assert issubclass(cls, Evaluator), kind
    assert isinstance(
        create_evaluator("segmentation", class_names=("a", "b")).evaluate(), SegmentationMetrics
    )
    component = create_evaluator(
        "component", threshold=0.5, min_prediction_size=1, min_instance_size=1
    )
    component.process(SCORE, LABEL)
    metrics = component.evaluate()
    assert isinstance(metrics, ComponentMetrics)
    assert metrics.num_gt_instances == 1 and metrics.f1_mean == 1.0
    with pytest.raises(InputError, match="exact, binned, segmentation, component"):
        create_evaluator("roc")


def test_group_feeds_each_member_its_own_map_against_the_shared_target():
    group = EvaluatorGroup({"good": create_evaluator("exact"), "bad": create_evaluator("exact")})
    group.process({"good": SCORE, "bad": -SCORE, "unused": SCORE}, LABEL)
    results = group.evaluate()
    assert list(results) == ["good", "bad"]
    assert results["good"].auroc == 1.0 and results["bad"].auroc == 0.0
    assert results["good"] == pixel_metrics(SCORE, LABEL)
    group.reset()
    group.process(SCORE, LABEL)  # one map for all members
    assert group.evaluate()["bad"].auroc == 1.0
    with pytest.raises(InputError, match="no prediction for evaluator 'bad'"):
        group.process({"good": SCORE}, LABEL)


def test_exact_and_binned_share_one_evaluate():
    exact, binned = create_evaluator("exact"), create_evaluator("binned")
    for evaluator in (exact, binned):
        evaluator.process(SCORE, LABEL)
    assert type(exact).evaluate is type(binned).evaluate
    assert exact.evaluate().average_precision == binned.evaluate().average_precision == 1.0
