"""Component metrics on hand-made masks and against a direct per-instance loop."""

import math

import numpy as np
import pytest
from scipy import ndimage

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.component_metrics import (
    SIOU_THRESHOLDS,
    ComponentEvaluator,
    frame_components,
    label_components,
)


def _reference(prediction, label, min_prediction_size, min_instance_size):
    """The SMIYC definitions written as plain loops over instances and segments."""
    structure = np.ones((3, 3))
    label = label.copy()
    prediction = prediction & (label != 255)
    instances, num_gt = ndimage.label(label == 1, structure)
    segments, num_pred = ndimage.label(prediction, structure)
    for index in range(1, num_pred + 1):
        if np.sum(segments == index) < min_prediction_size:
            segments[segments == index] = 0
    for index in range(1, num_gt + 1):
        if np.sum(instances == index) < min_instance_size:
            label[instances == index] = 255
    region = label != 255
    instances, segments = instances[region], segments[region]

    def siou(own, other, index):
        touching = np.unique(other[(own == index) & (other > 0)])
        in_touching = np.isin(other, touching)
        intersection = np.sum((own == index) & in_touching)
        on_other = np.sum(in_touching & (own > 0) & (own != index))
        union = np.sum(in_touching) + np.sum(own == index) - intersection - on_other
        return intersection / union

    siou_gt = [siou(instances, segments, i) for i in np.unique(instances[instances > 0])]
    siou_pred = [siou(segments, instances, j) for j in np.unique(segments[segments > 0])]
    ppv = [np.mean(instances[segments == j] > 0) for j in np.unique(segments[segments > 0])]
    return np.array(siou_gt), np.array(siou_pred), np.array(ppv)


def _blobs(rng, shape, count, max_size):
    mask = np.zeros(shape, dtype=bool)
    for _ in range(count):
        height, width = rng.integers(1, max_size, size=2)
        top, left = rng.integers(0, shape[0] - height), rng.integers(0, shape[1] - width)
        mask[top : top + height, left : left + width] = True
    return mask


@pytest.mark.parametrize("seed", range(8))
def test_matches_per_instance_loop(seed):
    rng = np.random.default_rng(seed)
    shape = (64, 96)
    label = _blobs(rng, shape, 6, 14).astype(np.uint8)
    label[_blobs(rng, shape, 3, 20) & (rng.random(shape) < 0.7)] = 255
    prediction = _blobs(rng, shape, 7, 18) | (label == 1) & (rng.random(shape) < 0.5)
    sizes = (int(rng.integers(0, 30)), int(rng.integers(0, 20)))
    frame = frame_components(prediction, label, *sizes)
    siou_gt, siou_pred, ppv = _reference(prediction, label, *sizes)
    np.testing.assert_allclose(frame.siou_gt, siou_gt)
    np.testing.assert_allclose(frame.siou_pred, siou_pred)
    np.testing.assert_allclose(frame.ppv_pred, ppv)


def test_hand_made_masks():
    label = np.zeros((20, 30), dtype=np.uint8)
    label[2:6, 2:6] = 1  # instance A, 16 px
    label[2:6, 10:14] = 1  # instance B, 16 px
    label[15:17, 25:27] = 1  # instance C, 4 px, never predicted
    prediction = np.zeros_like(label, dtype=bool)
    prediction[2:6, 2:14] = True  # one segment over A, B and an 8×4 bridge (48 px)
    prediction[12:14, 2:4] = True  # a false segment, 4 px
    frame = frame_components(prediction, label, 0, 0)
    # A: |A ∩ K| = 16, union = |K| + |A| − 16 − |K ∩ B| = 48 + 16 − 16 − 16 = 32.
    np.testing.assert_allclose(frame.siou_gt, [0.5, 0.5, 0.0])
    # The big segment touches A and B: 32 / (48 + 32 − 32) = 2/3; the false one 0.
    np.testing.assert_allclose(frame.siou_pred, [2 / 3, 0.0])
    np.testing.assert_allclose(frame.ppv_pred, [32 / 48, 0.0])

    evaluator = ComponentEvaluator(threshold=0.5, min_prediction_size=0, min_instance_size=0)
    evaluator.process(prediction.astype(np.float32), label)
    metrics = evaluator.evaluate()
    assert metrics.num_gt_instances == 3 and metrics.num_pred_segments == 2
    assert metrics.siou_gt == pytest.approx(1 / 3)
    assert metrics.ppv == pytest.approx(1 / 3)
    # t = 0.25: TP 2 (A, B), FN 1 (C), FP 1 (PPV 0) -> 4/6; t = 0.75: TP 0 -> F1 0.
    assert metrics.f1[SIOU_THRESHOLDS[0]] == pytest.approx(4 / 6)
    assert metrics.f1[SIOU_THRESHOLDS[-1]] == 0.0
    assert metrics.f1_mean == pytest.approx(np.mean(list(metrics.f1.values())))
    assert metrics.to_dict()["f1_50"] == metrics.f1[SIOU_THRESHOLDS[5]]


def test_size_filters_and_void():
    label = np.zeros((20, 20), dtype=np.uint8)
    label[1:3, 1:3] = 1  # 4 px instance: below min_instance_size -> void
    label[10:15, 10:15] = 1  # 25 px instance
    label[:, 18:] = 255
    prediction = np.zeros_like(label, dtype=bool)
    prediction[10:15, 10:15] = True
    prediction[1:3, 1:3] = True  # on the voided instance: outside the region
    prediction[5, 5] = True  # 1 px segment: below min_prediction_size
    prediction[:, 18:] = True  # entirely void
    frame = frame_components(prediction, label, min_prediction_size=3, min_instance_size=5)
    np.testing.assert_allclose(frame.siou_gt, [1.0])
    np.testing.assert_allclose(frame.ppv_pred, [1.0])


def test_eight_connectivity():
    mask = np.zeros((4, 4), dtype=bool)
    mask[0, 0] = mask[1, 1] = mask[3, 3] = True
    components = label_components(mask)
    assert components[0, 0] == components[1, 1] != components[3, 3]
    assert components.max() == 2


def test_empty_frame_gives_nan_and_shape_check():
    evaluator = ComponentEvaluator(threshold=0.0)
    evaluator.process(np.zeros((5, 5), np.float32), np.zeros((5, 5), np.uint8))
    metrics = evaluator.evaluate()
    assert math.isnan(metrics.siou_gt) and math.isnan(metrics.f1_mean)
    with pytest.raises(InputError, match="shape"):
        evaluator.process(np.zeros((5, 5), np.float32), np.zeros((4, 5), np.uint8))
