"""``merge``: evaluators fed on different workers add up to one fed every frame."""

import numpy as np
import pytest

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.binned_pixel_metrics import BinnedPixelEvaluator
from anomaly_seg_ros.evaluation.component_metrics import ComponentEvaluator
from anomaly_seg_ros.evaluation.object_metrics import ObjectEvaluator
from anomaly_seg_ros.evaluation.pixel_metrics import ExactPixelEvaluator
from anomaly_seg_ros.evaluation.segmentation_metrics import SegmentationEvaluator


def _frames(count=6, shape=(48, 64)):
    rng = np.random.default_rng(11)
    for index in range(count):
        label = np.zeros(shape, np.uint8)
        label[10 : 25 + index, 8 : 30 + 2 * index] = 1
        label[:2] = 255
        score = (rng.normal(size=shape) + 2.0 * (label == 1)).astype(np.float32)
        score[0, 0] = np.float32(index % 2)  # ties across frames
        yield score, label


@pytest.mark.parametrize(
    "make",
    [
        ExactPixelEvaluator,
        lambda: BinnedPixelEvaluator(),
        lambda: BinnedPixelEvaluator((-4.0, 6.0), 256),
        lambda: ComponentEvaluator(1.0, 50, 10),
        lambda: ObjectEvaluator(1.0, 5),
    ],
)
def test_merged_parts_equal_one_evaluator_over_every_frame(make):
    whole, parts = make(), [make(), make(), make()]
    for index, (score, label) in enumerate(_frames()):
        whole.process(score, label)
        parts[min(index // 2, 2)].process(score, label)
    merged = make()
    for part in parts:
        merged.merge(part)
    assert merged.evaluate() == whole.evaluate()  # every digit: same sums in the same order


def test_segmentation_confusions_add_and_mismatches_refuse():
    rng = np.random.default_rng(3)
    names = ("road", "car", "person")
    whole, left, right = (SegmentationEvaluator(names) for _ in range(3))
    for index in range(4):
        prediction, label = rng.integers(0, 4, (2, 16, 16))
        whole.process(prediction, label)
        (left if index < 2 else right).process(prediction, label)
    left.merge(right)
    assert np.array_equal(left.evaluate().confusion, whole.evaluate().confusion)
    assert left.evaluate().miou == whole.evaluate().miou
    with pytest.raises(InputError, match="class_names"):
        left.merge(SegmentationEvaluator(("road",)))
    with pytest.raises(InputError, match="cannot merge BinnedPixelEvaluator"):
        ExactPixelEvaluator().merge(BinnedPixelEvaluator())
    with pytest.raises(InputError, match="num_bins"):
        BinnedPixelEvaluator((0.0, 1.0), 16).merge(BinnedPixelEvaluator((0.0, 1.0), 32))
    with pytest.raises(InputError, match="threshold"):
        ObjectEvaluator(0.5).merge(ObjectEvaluator(0.6))
