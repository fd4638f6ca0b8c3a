"""Label colours and the overlay against direct numpy formulations."""

import cv2
import numpy as np
import pytest

from anomaly_seg_ros import visualize


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
