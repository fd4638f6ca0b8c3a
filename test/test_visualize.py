"""Label colours and the overlay against direct numpy formulations."""

import cv2
import numpy as np

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
