"""One post-processing path: the Detector's maps are what evaluation scores."""

import numpy as np

from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.evaluation.scoring import ScoreSpec, compute_score_map
from anomaly_seg_ros.pipeline.postprocess import anomaly_score, postprocess


def test_detector_and_evaluation_share_the_post_processing(tiny_model, rng):
    frame = rng.integers(0, 256, size=(70, 150, 3), dtype=np.uint8)
    spec = ScoreSpec("entropy", "refined+vde")
    config = spec.config(DetectorConfig())
    with Detector.from_path(tiny_model, config=config, backend="onnxruntime") as detector:
        result = detector.detect(frame)
    stages = []
    maps = postprocess(result.summary, config, (70, 150), clock=stages.append)
    assert stages == ["score", "refine", "resize", "mask"]
    np.testing.assert_array_equal(maps.labels, result.labels)
    np.testing.assert_array_equal(maps.score, result.score)
    np.testing.assert_array_equal(maps.mask, result.mask)
    np.testing.assert_array_equal(anomaly_score(result.summary, config, (70, 150)), result.score)
    evaluated = compute_score_map(result.summary, config, (70, 150))
    np.testing.assert_array_equal(evaluated, result.score)
