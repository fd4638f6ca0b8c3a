"""Component metrics of a dataset evaluation follow the Segment-Me-If-You-Can convention."""

import numpy as np

from anomaly_seg_ros.evaluation.component_metrics import ComponentEvaluator
from anomaly_seg_ros.evaluation.dataset_evaluation import evaluate_frames
from anomaly_seg_ros.evaluation.frames import FrameScores


def _tied_frames() -> list[FrameScores]:
    """Per frame: an obstacle scored 0.9 on its left half and 0.5 on its right half, a
    false region tied at 0.5, background 0.1. The best-F1 threshold lands on the tie."""
    frames = []
    for index in range(3):
        label = np.zeros((40, 40), np.uint8)
        label[5:15, 5:25] = 1
        label[:2] = 255
        score = np.full(label.shape, 0.1, np.float32)
        score[5:15, 5:15] = 0.9
        score[5:15, 15:25] = 0.5
        score[25:30, 25 + index : 35] = 0.5
        frames.append(FrameScores(f"f{index}", label, {"s": score}))
    return frames


def test_component_metrics_mask_with_score_above_the_threshold(tmp_path):
    result = evaluate_frames(
        _tied_frames(), ["s"], "tied", work_dir=tmp_path, component_sizes=(1, 1), progress=False
    )
    score = result.scores["s"]
    best = score.pixel.best_f1_threshold
    assert best == np.float32(0.5)  # pixel metrics: score >= 0.5 is the best F1
    assert score.component_threshold == best

    def components(threshold: float):
        evaluator = ComponentEvaluator(threshold, 1, 1)
        for frame in _tied_frames():
            evaluator.process(frame.scores["s"], frame.label)
        return evaluator.evaluate()

    above = components(best)  # SMIYC: score > threshold, the tied 0.5 pixels are out
    at_or_above = components(float(np.nextafter(np.float32(best), np.float32(0))))
    assert score.component == above
    assert score.component != at_or_above
    # with ">" only the obstacles' 0.9 halves are segments; ">=" adds the tied false regions
    assert above.num_pred_segments == 3 and at_or_above.num_pred_segments == 6
    assert above.f1_mean != at_or_above.f1_mean
