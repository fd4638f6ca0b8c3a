"""Detector end to end on a real ONNX Runtime session."""

import dataclasses

import numpy as np
import pytest

from anomaly_seg_ros.backends.onnxruntime import OnnxRuntimeBackend
from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.errors import ConfigError, ModelError
from anomaly_seg_ros.model.sidecar import load_model_info
from anomaly_seg_ros.model.sml_stats import save_sml_stats
from anomaly_seg_ros.pipeline.postprocess import anomaly_mask
from anomaly_seg_ros.pipeline.refine import local_refinement_halo
from anomaly_seg_ros.pipeline.scores import compute_score
from anomaly_seg_ros.pipeline.strips import StripPool
from anomaly_seg_ros.pipeline.visualize import cityscapes_palette


@pytest.fixture
def detector(tiny_model):
    with Detector.from_path(tiny_model, backend="onnxruntime") as detector:
        yield detector


@pytest.fixture
def frame(rng):
    return rng.integers(0, 256, size=(90, 200, 3), dtype=np.uint8)


def test_outputs_at_camera_resolution(detector, frame):
    result = detector.detect(frame, outputs=("labels_color", "overlay"))
    assert result.labels.shape == (90, 200) and result.labels.dtype == np.uint8
    assert result.score.shape == (90, 200) and result.score.dtype == np.float32
    assert result.mask.shape == (90, 200) and result.mask.dtype == bool
    assert result.labels_color.shape == (90, 200, 3) and result.overlay.shape == (90, 200, 3)
    assert result.summary.shape == (64, 128)
    assert int(result.labels.max()) < 19
    np.testing.assert_array_equal(result.labels_color, cityscapes_palette()[result.labels])
    assert {"preprocess", "inference", "score", "refine", "resize", "mask"} <= set(result.timings)


def test_visual_outputs_only_when_requested(detector, frame):
    result = detector.detect(frame)
    assert result.labels_color is None and result.overlay is None
    assert "visualize" not in result.timings
    with pytest.raises(ConfigError, match="unknown outputs"):
        detector.detect(frame, outputs=("heatmap",))


@pytest.mark.parametrize(
    "steps", [[("labels_color",), ("overlay",)], [("overlay",)], [("labels_color", "overlay")]]
)
def test_render_after_detect_draws_what_detect_draws(detector, frame, steps):
    """The node's order (maps first, pictures one by one) gives detect's very images."""
    detector.config = DetectorConfig(threshold=-100.0)  # every pixel anomalous: heat drawn
    wanted = {name for step in steps for name in step}
    direct = detector.detect(frame, outputs=wanted)
    result = detector.detect(frame)
    for step in steps:
        result = detector.render(frame, result, step)
    for name in ("labels", "score", "mask"):
        np.testing.assert_array_equal(getattr(result, name), getattr(direct, name))
    for name in ("labels_color", "overlay"):
        expected = getattr(direct, name)
        if expected is None:
            assert getattr(result, name) is None, name
        else:
            np.testing.assert_array_equal(getattr(result, name), expected)
    assert result.mask.all() and result.timings["visualize"] > 0
    assert detector.render(frame, result, ()) is result
    with pytest.raises(ConfigError, match="unknown outputs"):
        detector.render(frame, result, ("heatmap",))


def test_score_is_resized_bilinearly_and_labels_nearest(detector, frame):
    import cv2

    result = detector.detect(frame)
    network_score = compute_score("max_logit", result.summary)
    expected = cv2.resize(network_score, (200, 90), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(result.score, expected, atol=1e-5)
    # Nearest pixel centre (INTER_NEAREST is half a pixel off; see preprocess.to_camera)
    expected_labels = cv2.resize(
        result.summary.label, (200, 90), interpolation=cv2.INTER_NEAREST_EXACT
    )
    np.testing.assert_array_equal(result.labels, expected_labels)


def test_same_size_input_is_not_resized(detector, rng):
    frame = rng.integers(0, 256, size=(64, 128, 3), dtype=np.uint8)
    result = detector.detect(frame)
    np.testing.assert_array_equal(result.labels, result.summary.label)


def test_threshold_and_min_area_make_the_mask():
    score = np.zeros((20, 20), np.float32)
    score[2:4, 2:4] = 5.0  # 4 px component
    score[10:17, 10:17] = 5.0  # 49 px component
    score[0, 19] = 5.0  # 1 px
    assert anomaly_mask(score, 1.0, 0).sum() == 4 + 49 + 1
    kept = anomaly_mask(score, 1.0, 5)
    assert kept.sum() == 49 and kept[12, 12] and not kept[2, 2]
    assert not anomaly_mask(score, 6.0, 0).any()
    diagonal = np.zeros((5, 5), np.float32)
    diagonal[[0, 1, 2], [0, 1, 2]] = 1.0  # 8-connected: one component of 3
    assert anomaly_mask(diagonal, 0.5, 3).sum() == 3


def test_run_time_reconfiguration_changes_output(detector, frame):
    base = detector.detect(frame)
    detector.config = detector.config.replace(score_type="entropy", threshold=-1e9)
    changed = detector.detect(frame)
    assert changed.mask.all()
    np.testing.assert_array_equal(changed.labels, base.labels)
    assert not np.allclose(changed.score, base.score)


def test_refinement_and_vde_run_and_change_the_score(detector, frame):
    plain = detector.detect(frame).score
    detector.config = DetectorConfig(
        boundary_suppression=True, dilated_smoothing=True, vde=True, road_confidence=0.0
    )
    refined = detector.detect(frame)
    assert "refine" in refined.timings
    assert not np.allclose(refined.score, plain)


def test_sml_needs_statistics(detector, tiny_model, tmp_path, frame):
    with pytest.raises(ModelError, match="SML"):
        detector.config = DetectorConfig(score_type="sml")
    names = [f"class{i}" for i in range(19)]
    stats = save_sml_stats(tmp_path / "s.sml.json", names, np.full(19, 2.0), np.full(19, 0.5))
    with Detector.from_path(
        tiny_model, DetectorConfig(score_type="sml"), "onnxruntime", stats
    ) as sml_detector:
        result = sml_detector.detect(frame)
    expected = -(result.summary.max_logit - 2.0) / 0.5
    np.testing.assert_allclose(
        compute_score(
            "sml", result.summary, np.full(19, 2.0, np.float32), np.full(19, 0.5, np.float32)
        ),
        expected,
        rtol=1e-5,
    )


def test_default_sml_stats_beside_the_model_are_found(tiny_model, tmp_path):
    import shutil

    model = tmp_path / "m.onnx"
    shutil.copy(tiny_model, model)
    shutil.copy(tiny_model.with_suffix(".json"), tmp_path / "m.json")
    save_sml_stats(
        tmp_path / "m.sml.json", [f"class{i}" for i in range(19)], np.zeros(19), np.ones(19)
    )
    with Detector.from_path(model, DetectorConfig(score_type="sml")) as detector:
        assert detector.sml_stats is not None


def test_config_is_frozen_and_validated():
    config = DetectorConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.threshold = 1.0  # type: ignore[misc]
    with pytest.raises(ConfigError, match="score_type 'foo' unknown"):
        config.replace(score_type="foo")
    with pytest.raises(ConfigError, match="unknown detector setting"):
        config.replace(treshold=1.0)
    with pytest.raises(ConfigError, match="smoothing_kernel 4 must be odd"):
        DetectorConfig(smoothing_kernel=4)
    with pytest.raises(ConfigError, match="multiple of"):
        DetectorConfig(boundary_suppression=True, boundary_width=3, boundary_iterations=2)


def test_host_threads_do_not_change_the_result(tiny_model, rng):
    config = DetectorConfig(
        boundary_suppression=True,
        boundary_width=2,
        boundary_iterations=2,
        dilated_smoothing=True,
        smoothing_kernel=3,
        smoothing_dilation=2,
        vde=True,
        road_confidence=0.0,
    )  # a halo of 7 rows, so that the tiny model's 64 rows make several strips
    frame = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    results = []
    for threads in (1, 3):
        with Detector.from_path(
            tiny_model, config, "onnxruntime", host_threads=threads
        ) as detector:
            assert detector.strip_pool.threads == threads
            # The tiny model's 64 rows make one strip by default; cut thinner ones.
            detector.strip_pool.close()
            detector.strip_pool = StripPool(threads, min_rows=16)
            halo = local_refinement_halo(config)
            assert len(detector.strip_pool.strips(64, halo)) == min(threads, 4)
            results.append(detector.detect(frame))
    np.testing.assert_array_equal(results[0].score, results[1].score)
    np.testing.assert_array_equal(results[0].mask, results[1].mask)
    with pytest.raises(ConfigError, match="host_threads"):
        Detector.from_path(tiny_model, backend="onnxruntime", host_threads=-2)


class SharedInputBackend(OnnxRuntimeBackend):
    """ONNX Runtime that, like TensorRT, offers its own input array and records what it got."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.staged = np.full((1, 3, *self.info.input_size), np.nan, np.float32)
        self.received = []

    def input_buffer(self):
        return self.staged

    def infer(self, image):
        self.received.append(image)
        return super().infer(image)


def test_preprocessing_goes_into_the_backends_input_array(tiny_model, rng):
    frame = rng.integers(0, 256, size=(90, 200, 3), dtype=np.uint8)
    with Detector.from_path(tiny_model, backend="onnxruntime") as plain:
        expected = plain.detect(frame)
        own = plain._input_target()[0]
        plain.detect(frame)  # the thread's own array is reused frame after frame
        assert plain._input_target()[0] is own
    backend = SharedInputBackend(tiny_model, load_model_info(tiny_model))
    with Detector(backend) as detector:
        result = detector.detect(frame)
    assert backend.received[0] is backend.staged and not np.isnan(backend.staged).any()
    np.testing.assert_array_equal(result.labels, expected.labels)
    np.testing.assert_array_equal(result.score, expected.score)


@pytest.mark.parametrize("failure", ["garbage_stats", "wrong_classes", "road_class", "sml"])
def test_backend_is_closed_on_any_start_up_failure(tiny_model, tmp_path, monkeypatch, failure):
    """The backend holds device memory (TensorRT): a failed start must release it."""
    opened, closed = [], []
    real_init, real_close = OnnxRuntimeBackend.__init__, OnnxRuntimeBackend.close

    def counting_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        opened.append(self)

    def counting_close(self):
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(OnnxRuntimeBackend, "__init__", counting_init)
    monkeypatch.setattr(OnnxRuntimeBackend, "close", counting_close)
    stats = tmp_path / "stats.sml.json"
    config = None
    if failure == "garbage_stats":
        stats.write_text("{not json")
    elif failure == "wrong_classes":
        save_sml_stats(stats, ("a", "b"), np.zeros(2), np.ones(2))
    else:
        stats = None
        config = (
            DetectorConfig(vde=True, road_class=99)
            if failure == "road_class"
            else DetectorConfig(score_type="sml")
        )
    with pytest.raises((ModelError, ConfigError)):
        Detector.from_path(tiny_model, config, backend="onnxruntime", sml_stats=stats)
    assert len(opened) == 1 and closed == opened
