"""Object-level figures on small hand-made frames whose answer is known by construction."""

import math

import numpy as np
import pytest

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.object_metrics import FOUND_SIOU, ObjectEvaluator

THRESHOLD = 0.5


def _frames():
    """Frame 1: a 16 px obstacle fully predicted (found), a 144 px one predicted on 60 px
    (sIoU 60/144 < 0.5: missed), a 4 px one (under 10 px: void), a 9 px false blob, a 4 px
    blob the node's min_area 5 drops, and a pixel tied with the threshold (not predicted).
    Frame 2: no obstacle, one 6 px false blob."""
    label = np.zeros((30, 40), np.uint8)
    score = np.zeros((30, 40), np.float32)
    label[2:6, 2:6] = 1  # A: 16 px
    score[2:6, 2:6] = 1.0
    label[10:22, 10:22] = 1  # B: 144 px
    score[10:22, 10:15] = 1.0  # 60 px of it
    label[0, 30:32] = label[1, 30:32] = 1  # C: 4 px, made void
    score[25:28, 30:33] = 1.0  # false blob, 9 px
    score[26:28, 2:4] = 1.0  # 4 px: under min_area
    score[0, 20] = THRESHOLD  # tied: `>` does not predict it
    label[28:, :] = 255
    second_label = np.zeros((30, 40), np.uint8)
    second_score = np.zeros((30, 40), np.float32)
    second_score[5:7, 5:8] = 2.0
    return [(score, label), (second_score, second_label)]


def test_found_missed_false_and_area_bins():
    evaluator = ObjectEvaluator(THRESHOLD, min_area=5)
    for score, label in _frames():
        evaluator.process(score, label)
    metrics = evaluator.evaluate()
    assert FOUND_SIOU == 0.5
    assert (metrics.frames, metrics.obstacles, metrics.found) == (2, 2, 1)
    assert metrics.component_recall == 0.5
    # A's and B's segments lie on obstacles; the 9 px blob and frame 2's 6 px blob do not.
    assert (metrics.predicted, metrics.false_components) == (4, 2)
    assert metrics.false_per_frame == 1.0
    bins = {item.name: (item.obstacles, item.found) for item in metrics.bins}
    assert bins == {
        "10–100 px": (1, 1),
        "100–1000 px": (1, 0),
        "1000–10000 px": (0, 0),
        "≥ 10000 px": (0, 0),
    }
    assert math.isnan(metrics.bins[2].found_rate)
    values = metrics.to_dict()
    assert values["component_recall"] == 0.5 and values["by_area"][1]["found_rate"] == 0.0


def test_half_covered_obstacle_is_found_and_tied_scores_are_not_predicted():
    label = np.zeros((20, 20), np.uint8)
    label[4:12, 4:12] = 1  # 64 px
    score = np.zeros((20, 20), np.float32)
    score[4:12, 4:8] = 1.0  # 32 px: sIoU exactly 0.5 -> found
    evaluator = ObjectEvaluator(THRESHOLD)
    evaluator.process(score, label)
    assert evaluator.evaluate().found == 1
    evaluator.reset()
    evaluator.process(np.where(label == 1, THRESHOLD, 0).astype(np.float32), label)
    tied = evaluator.evaluate()
    assert (tied.found, tied.predicted) == (0, 0)
    with pytest.raises(InputError, match="shape"):
        evaluator.process(score, label[:10])
