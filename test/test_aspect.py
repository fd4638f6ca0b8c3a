"""Aspect policies and antialiased resizing: camera frame ↔ network input ↔ outputs."""

import numpy as np
import pytest

from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.model.sidecar import ModelInfo
from anomaly_seg_ros.model.summary import LogitSummary
from anomaly_seg_ros.pipeline import preprocess
from anomaly_seg_ros.pipeline.postprocess import postprocess

NETWORK = (64, 128)  # 2:1 like Cityscapes
CAMERA = (90, 160)  # 16:9


def test_geometry_of_each_policy():
    stretch = preprocess.view_geometry(CAMERA, NETWORK, "stretch")
    assert stretch.camera_box == (0, 0, 90, 160) and stretch.network_box == (0, 0, 64, 128)
    # letterbox: 160 → 128 wide (×0.8), 90 → 72 high > 64: fit the height instead (×0.711)
    letterbox = preprocess.view_geometry(CAMERA, NETWORK, "letterbox")
    assert letterbox.camera_box == (0, 0, 90, 160)
    assert letterbox.network_box == (0, 7, 64, 114)  # 160·64/90 = 113.8, centred
    crop = preprocess.view_geometry(CAMERA, NETWORK, "center_crop")
    assert crop.network_box == (0, 0, 64, 128)
    assert crop.camera_box == (5, 0, 80, 160)  # the 2:1 band in the middle
    with pytest.raises(ConfigError, match="center_crop"):
        preprocess.view_geometry(CAMERA, NETWORK, "squash")
    with pytest.raises(ConfigError, match="aspect 'squash' unknown"):
        DetectorConfig(aspect="squash")


def _info() -> ModelInfo:
    return ModelInfo(tuple(f"c{i}" for i in range(3)), *NETWORK)


def test_letterbox_pads_with_the_mean_and_keeps_the_frame_whole(rng):
    rgb = rng.integers(0, 256, size=(*CAMERA, 3), dtype=np.uint8)
    image = preprocess.to_network_input(rgb, _info(), aspect="letterbox")
    # Padding columns hold the ImageNet mean colour: ~0 after normalising (uint8 rounding)
    assert np.abs(image[..., :7]).max() < 0.02 and np.abs(image[..., 121:]).max() < 0.02
    assert np.abs(image[..., 7:121]).max() > 1.0  # the frame itself


def _summary_with_columns() -> LogitSummary:
    """A summary whose label and score encode the network column (to follow the mapping)."""
    height, width = NETWORK
    columns = np.broadcast_to(np.arange(width, dtype=np.float32), (height, width)).copy()
    label = (np.arange(width) // 16).astype(np.uint8)
    labels = np.broadcast_to(label, (height, width)).copy()
    zeros = np.zeros((height, width), np.float32)
    return LogitSummary(labels, columns, zeros, zeros, zeros)


@pytest.mark.parametrize("aspect", ["stretch", "letterbox", "center_crop"])
def test_outputs_land_on_the_camera_pixels_the_network_saw(aspect):
    """Camera column x was seen at network column n(x); its outputs must be n(x)'s."""
    summary = _summary_with_columns()
    config = DetectorConfig(score_type="max_logit", threshold=-1000.0, aspect=aspect)
    maps = postprocess(summary, config, CAMERA)
    geometry = preprocess.view_geometry(CAMERA, NETWORK, aspect)
    top, left, height, width = geometry.camera_box
    _, net_left, _, net_width = geometry.network_box
    # Pixel centres: camera x → network x' = net_left + (x - left + 0.5)·net_w/w − 0.5
    xs = np.arange(left, left + width)
    expected = net_left + (xs - left + 0.5) * net_width / width - 0.5
    row = -maps.score[top + height // 2, left : left + width]  # max_logit score = −max logit
    # Shrinking averages neighbouring columns (area filter): within half a column, and
    # the ends are clamped to the view's first/last column.
    inner = slice(2, -2)
    np.testing.assert_allclose(row[inner], expected[inner], atol=0.6)
    # Labels: the nearest network pixel, centre to centre (INTER_NEAREST_EXACT)
    nearest = np.clip(np.floor(expected + 0.5), 0, NETWORK[1] - 1).astype(int)
    np.testing.assert_array_equal(maps.labels[top + height // 2, xs], nearest // 16)
    if aspect == "center_crop":
        outside = np.ones(CAMERA, bool)
        outside[top : top + height, left : left + width] = False
        assert outside.sum() == 2 * 5 * 160
        assert np.all(maps.labels[outside] == 255)  # void: never seen
        assert np.all(maps.score[outside] == -summary.max_logit.max())  # the view's lowest
        assert not maps.mask[outside].any()  # threshold −1000 marks every seen pixel...
        assert maps.mask[~outside].all()  # ...and none of the unseen ones
    else:
        assert maps.labels.max() < 255 and maps.mask.all()


def test_area_shrink_keeps_thin_structures():
    """A 1-pixel line in a 1920-wide frame survives a shrink to 512 (bilinear loses it)."""
    import cv2

    frame = np.zeros((1080, 1920), np.uint8)
    frame[:, 1001] = 255  # a thin pole
    area = preprocess.resize_smooth(frame, (288, 512))
    linear = cv2.resize(frame, (512, 288), interpolation=cv2.INTER_LINEAR)
    # Area conserves the line's mass (255 / 3.75 per output column); bilinear samples
    # between source pixels 1000.x and 1001.x and keeps a varying fraction (or none).
    assert area.sum(axis=1).mean() == pytest.approx(255 / 3.75, rel=0.05)
    assert abs(linear.sum(axis=1).mean() - 255 / 3.75) > 10


def test_mixed_axes_shrink_one_and_enlarge_the_other(rng):
    image = rng.random((100, 40)).astype(np.float32)
    resized = preprocess.resize_smooth(image, (50, 80))
    assert resized.shape == (50, 80)
    # Each output row is the average of two source rows (then interpolated across)
    assert resized.mean() == pytest.approx(image.mean(), rel=0.02)


@pytest.mark.parametrize("aspect", ["letterbox", "center_crop"])
def test_detector_outputs_at_camera_size_for_each_policy(tiny_model, rng, aspect):
    """The whole Detector: a 16:9 frame into the 2:1 tiny model, every output at camera
    size; the unseen bands of center_crop are void, lowest-scored, unmasked, void-coloured."""
    from anomaly_seg_ros.detector import Detector

    frame = rng.integers(0, 256, (*CAMERA, 3), dtype=np.uint8)
    config = DetectorConfig(threshold=-1e9, aspect=aspect)  # every seen pixel is masked
    with Detector.from_path(tiny_model, config, "onnxruntime") as detector:
        result = detector.detect(frame, outputs=("labels_color", "overlay"))
        void_colour = detector.palette[255]
    for image in (result.labels, result.score, result.mask, result.labels_color, result.overlay):
        assert image.shape[:2] == CAMERA
    if aspect == "letterbox":
        assert result.mask.all() and result.labels.max() < 19
    else:
        unseen = np.ones(CAMERA, bool)
        unseen[5:85] = False
        assert np.all(result.labels[unseen] == 255) and not result.mask[unseen].any()
        assert result.mask[~unseen].all()
        assert np.all(result.score[unseen] == result.score[~unseen].min())
        assert np.all(result.labels_color[unseen] == void_colour)
