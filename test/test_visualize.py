"""Label colours and the overlay against direct numpy formulations."""

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.pipeline import visualize


def test_colorize_is_the_palette_lookup(rng):
    labels = rng.integers(0, 19, size=(37, 53)).astype(np.uint8)
    labels[::7, ::5] = 255
    palette = visualize.cityscapes_palette()
    colours = visualize.colorize_labels(labels)
    assert colours.shape == (37, 53, 3) and colours.dtype == np.uint8
    np.testing.assert_array_equal(colours, palette[labels])
    np.testing.assert_array_equal(colours[0, 0], palette[255])  # void is black
    small = rng.integers(0, 256, size=(4, 3)).astype(np.uint8)  # a custom short palette
    np.testing.assert_array_equal(visualize.colorize_labels(labels % 4, small), small[labels % 4])


def test_overlay_blends_labels_and_paints_anomalies(rng):
    rgb = rng.integers(0, 256, size=(60, 80, 3), dtype=np.uint8)
    labels_color = visualize.colorize_labels(rng.integers(0, 19, size=(60, 80)).astype(np.uint8))
    score = rng.normal(size=(60, 80)).astype(np.float32)
    mask = np.zeros((60, 80), bool)
    mask[20:40, 30:60] = True
    picture = visualize.overlay(rgb, labels_color, score, mask, alpha=0.4)
    base = cv2.addWeighted(rgb, 0.6, labels_color, 0.4, 0.0)
    values = score[mask]
    heat = visualize.heat_colors(score, float(values.min()), float(values.max()))
    painted = cv2.addWeighted(rgb, 0.3, heat, 0.7, 0.0)
    inside = np.zeros_like(mask)
    inside[22:38, 32:58] = True  # away from the outline
    outside = ~np.pad(np.ones((24, 34), bool), ((18, 18), (28, 18)))  # 2 px off the mask
    np.testing.assert_array_equal(picture[inside], painted[inside])
    np.testing.assert_array_equal(picture[outside], base[outside])
    outline = picture[20, 30:60]
    assert (outline == visualize.OUTLINE_COLOR).all(axis=1).any()
    np.testing.assert_array_equal(
        visualize.overlay(rgb, labels_color, score, np.zeros_like(mask), 0.4), base
    )


def full_frame_overlay(rgb, labels_color, score, mask, alpha):
    """The overlay as first written: heat colours over the whole frame, then masked."""
    picture = cv2.addWeighted(rgb, 1.0 - alpha, labels_color, alpha, 0.0)
    if mask.any():
        values = score[mask]
        heat = visualize.heat_colors(score, float(values.min()), float(values.max()))
        blended = cv2.addWeighted(rgb, 0.3, heat, 0.7, 0.0)
        cv2.copyTo(blended, mask.view(np.uint8), picture)
        contours, _ = cv2.findContours(
            mask.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        thickness = max(1, round(max(rgb.shape[:2]) / 400))
        cv2.drawContours(picture, contours, -1, visualize.OUTLINE_COLOR, thickness)
    return picture


def test_heat_only_where_it_shows_gives_the_full_frame_overlay(rng):
    rgb = rng.integers(0, 256, size=(90, 140, 3), dtype=np.uint8)
    labels_color = visualize.colorize_labels(rng.integers(0, 19, size=(90, 140)).astype(np.uint8))
    score = rng.normal(size=(90, 140)).astype(np.float32)
    mask = np.zeros((90, 140), bool)
    mask[5:20, 100:130] = True  # two blobs far apart, and a single pixel
    mask[60:85, 3:40] = rng.random((25, 37)) > 0.3
    mask[45, 70] = True
    for current in (mask, mask[:, ::-1].copy(), np.ones_like(mask)):
        np.testing.assert_array_equal(
            visualize.overlay(rgb, labels_color, score, current, 0.5),
            full_frame_overlay(rgb, labels_color, score, current, 0.5),
        )


def test_display_range_puts_the_threshold_at_a_quarter_and_the_flagged_scores_above(rng):
    road = rng.normal(0.0, 0.01, size=10_000).astype(np.float32)  # ordinary road pixels
    outside = road - 2.0  # lowered by VDE
    obstacle = rng.uniform(0.3, 1.0, size=300).astype(np.float32)
    score = np.concatenate([road, outside, obstacle])
    low, high = visualize.score_display_range(score, threshold=0.05)
    assert (0.05 - low) / (high - low) == pytest.approx(visualize.THRESHOLD_POSITION)
    assert high == np.percentile(score[score > 0.05], 99)
    position = (np.median(road) - low) / (high - low)
    assert position < visualize.THRESHOLD_POSITION  # the road is dark
    assert (np.median(obstacle) - low) / (high - low) > 0.5  # the obstacle bright
    # Without a threshold (or none above it): the upper quarter of the scores.
    for threshold in (None, 5.0):
        low, high = visualize.score_display_range(score, threshold)
        assert (low, high) == pytest.approx(tuple(np.percentile(score, (75, 99.9))))
    assert visualize.score_display_range(np.full(4, np.nan, np.float32)) == (0.0, 1.0)


def heat_as_first_written(score, low, high):
    """The heat colours before issue 25: one numpy expression, the BGR map, a conversion."""
    span = max(high - low, 1e-6)
    scaled = np.clip((score - low) * (255.0 / span), 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def test_heat_colours_are_the_pixels_of_the_first_formulation(rng):
    score = rng.normal(size=(64, 96)).astype(np.float32)
    # Values on the bin edges, at both clip ends and far outside: truncation, not rounding.
    score[0, :9] = [-1.0, 0.0, 1.0, -1.0 + 2.0 / 255.0, 0.5, 1e6, -1e6, np.float32(1 / 3), 0.25]
    for low, high in ((-1.0, 1.0), (0.0, 255.0), (-2.5, 3.75), (0.3, 0.3)):
        expected = heat_as_first_written(score, low, high)
        np.testing.assert_array_equal(visualize.heat_colors(score, low, high), expected)
    doubles = score.astype(np.float64)  # report.py and the demo may pass other dtypes
    np.testing.assert_array_equal(
        visualize.heat_colors(doubles, -1.0, 1.0), heat_as_first_written(doubles, -1.0, 1.0)
    )


def test_overlay_of_a_camera_frame_is_the_first_formulation(rng):
    """Camera-sized picture with many components: the overlay's pixels are the ones the
    node published before (full-frame heat by the first formula, then masked)."""
    height, width = 256, 512
    rgb = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    labels = cv2.resize(rng.integers(0, 19, (16, 32)).astype(np.uint8), (width, height))
    labels_color = visualize.colorize_labels(labels)
    score = cv2.resize(rng.normal(size=(32, 64)).astype(np.float32), (width, height))
    mask = score > 0.8
    picture = cv2.addWeighted(rgb, 0.5, labels_color, 0.5, 0.0)
    values = score[mask]
    heat = heat_as_first_written(score, float(values.min()), float(values.max()))
    cv2.copyTo(cv2.addWeighted(rgb, 0.3, heat, 0.7, 0.0), mask.view(np.uint8), picture)
    contours, _ = cv2.findContours(mask.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(picture, contours, -1, visualize.OUTLINE_COLOR, 1)
    np.testing.assert_array_equal(visualize.overlay(rgb, labels_color, score, mask), picture)


def test_overlay_of_an_image_with_a_side_over_13_million_pixels():
    """OpenCV draws lines up to 32767 px thick: the outline of a 1 x 13,200,000 image
    (a side/400 rule asked for 33,000) is capped, and the overlay is drawn."""
    width = 13_200_000
    rgb = np.zeros((1, width, 3), np.uint8)
    score = np.zeros((1, width), np.float32)
    mask = np.zeros((1, width), bool)
    mask[0, 1000:3000] = True
    score[mask] = 1.0
    picture = visualize.overlay(rgb, np.zeros_like(rgb), score, mask)
    assert picture.shape == rgb.shape
    np.testing.assert_array_equal(picture[0, 1000], visualize.OUTLINE_COLOR)
    assert not picture[0, 3000 + visualize.MAX_OUTLINE_THICKNESS :].any()  # outline ends


def test_outline_thickness_grows_with_the_frame_up_to_the_cap():
    def thickness(height, width):
        mask = np.zeros((height, width), bool)
        mask[height // 2 - 1 : height // 2 + 1, width // 2 - 1 : width // 2 + 1] = True
        blank = np.zeros((height, width, 3), np.uint8)
        picture = visualize.overlay(blank, blank, mask.astype(np.float32), mask)
        return int((picture[:, width // 2] == visualize.OUTLINE_COLOR).all(axis=1).sum())

    assert thickness(64, 800) < thickness(64, 4000) < thickness(64, 40_000)
    assert thickness(64, 40_000) == thickness(64, 80_000)  # capped
