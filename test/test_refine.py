"""Refinement against straightforward reference code and hand-made label maps."""

import math

import numpy as np
import pytest

from anomaly_seg_ros.pipeline import refine
from anomaly_seg_ros.refinement_spec import BoundarySuppression, log_confidence_threshold


def reference_boundaries(labels: np.ndarray) -> np.ndarray:
    """Max over the 4-neighbourhood cross != min over the 3×3 square (outside ignored)."""
    height, width = labels.shape
    out = np.zeros_like(labels, dtype=bool)
    for y in range(height):
        for x in range(width):
            cross = [labels[y, x]] + [
                labels[y + dy, x + dx]
                for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))
                if 0 <= y + dy < height and 0 <= x + dx < width
            ]
            square = [
                labels[y + dy, x + dx]
                for dy in (-1, 0, 1)
                for dx in (-1, 0, 1)
                if 0 <= y + dy < height and 0 <= x + dx < width
            ]
            out[y, x] = max(cross) != min(square)
    return out


def reference_suppression(score, labels, width, iterations):
    """The SML boundary suppression written pixel by pixel."""
    height, wide = labels.shape
    boundary = reference_boundaries(labels)
    out = score.astype(np.float64).copy()
    step = width // iterations
    for iteration in range(iterations):
        radius = 0 if iteration == iterations - 1 else width - step * iteration - 1
        band = np.zeros_like(boundary)
        for y, x in zip(*np.nonzero(boundary)):
            for dy in range(-radius, radius + 1):
                for dx in range(-radius, radius + 1):
                    if abs(dy) + abs(dx) <= radius and 0 <= y + dy < height and 0 <= x + dx < wide:
                        band[y + dy, x + dx] = True
        previous = out.copy()
        for y in range(height):
            for x in range(wide):
                if not band[y, x]:
                    continue
                values = []
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        yy = min(max(y + dy, 0), height - 1)  # replicated border
                        xx = min(max(x + dx, 0), wide - 1)
                        if not band[yy, xx]:
                            values.append(previous[yy, xx])
                if values:
                    out[y, x] = sum(values) / len(values)
    return out


def test_boundaries_match_reference(rng):
    labels = rng.integers(0, 3, size=(9, 11)).astype(np.uint8)
    np.testing.assert_array_equal(refine.class_boundaries(labels), reference_boundaries(labels))


@pytest.mark.parametrize(("width", "iterations"), [(4, 4), (2, 2), (4, 2), (0, 1)])
def test_boundary_suppression_matches_reference(rng, width, iterations):
    labels = np.zeros((24, 30), np.uint8)
    labels[8:18, 6:20] = 1
    labels[:, 24:] = 2
    labels[20:, :5] = 3
    score = rng.normal(size=labels.shape).astype(np.float32)
    expected = reference_suppression(score, labels, width, iterations)
    actual = refine.suppress_boundaries(score, labels, width, iterations)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    # Far from any boundary nothing changes.
    assert actual[12, 12] == score[12, 12]


def reference_dilated_gaussian(score, size, sigma, dilation):
    height, width = score.shape
    center = (size - 1) / 2
    taps = np.array(
        [
            [
                math.exp(-((i - center) ** 2 + (j - center) ** 2) / (2 * sigma**2))
                for j in range(size)
            ]
            for i in range(size)
        ]
    )
    taps /= taps.sum()
    pad = dilation * (size // 2)
    padded = np.pad(score.astype(np.float64), pad, mode="edge")
    out = np.zeros((height, width))
    for i in range(size):
        for j in range(size):
            out += (
                taps[i, j]
                * padded[i * dilation : i * dilation + height, j * dilation : j * dilation + width]
            )
    return out


@pytest.mark.parametrize(("size", "sigma", "dilation"), [(7, 1.0, 6), (5, 2.0, 1), (3, 0.5, 3)])
def test_dilated_smoothing_matches_reference(rng, size, sigma, dilation):
    score = rng.normal(size=(40, 52)).astype(np.float32)
    expected = reference_dilated_gaussian(score, size, sigma, dilation)
    np.testing.assert_allclose(
        refine.dilated_smoothing(score, size, sigma, dilation), expected, atol=1e-5
    )


def scene() -> np.ndarray:
    """Sky on top, buildings at the sides, a road trapezoid with an object lying on it."""
    labels = np.full((40, 60), 10, np.uint8)  # sky
    labels[15:, :] = 2  # building
    for row in range(15, 40):
        half = 3 + (row - 15)  # the road widens towards the camera
        labels[row, max(0, 30 - half) : min(60, 30 + half)] = 0
    labels[28:33, 26:33] = 13  # a "car" (any non-road class) enclosed by road
    return labels


def test_road_region_fills_enclosed_objects_and_excludes_sky():
    labels = scene()
    confidence = np.ones(labels.shape, np.float32)
    region = refine.road_region(labels, confidence, road_class=0, min_confidence=0.9)
    assert region[labels == 0].all()  # all confident road is inside
    assert region[28:33, 26:33].all()  # the object enclosed by road is inside
    assert not region[:15].any()  # sky is outside
    assert not region[20, :5].any() and not region[20, 55:].any()  # buildings beside the road


def reference_row_span(seeds: np.ndarray) -> np.ndarray:
    """The paper's row-wise reading, pixel by pixel: a seed at or left, and at or right."""
    region = np.zeros_like(seeds)
    for y, x in np.ndindex(seeds.shape):
        region[y, x] = seeds[y, : x + 1].any() and seeds[y, x:].any()
    return region


def test_road_region_is_the_row_span_of_the_seeds(rng):
    labels = rng.choice(np.array([0, 0, 1, 2], np.uint8), size=(23, 31))
    confidence = rng.uniform(0.5, 1.0, size=labels.shape).astype(np.float32)
    seeds = (labels == 0) & (confidence >= 0.8)
    region = refine.road_region(labels, confidence, 0, 0.8)
    np.testing.assert_array_equal(region, reference_row_span(seeds))


def test_an_obstacle_at_the_far_edge_of_the_road_is_inside_the_row_span():
    labels = scene()
    labels[15:18, 29:31] = 13  # where the road starts: no road above it
    confidence = np.ones(labels.shape, np.float32)
    region = refine.road_region(labels, confidence)
    assert region[15:18, 29:31].all()
    assert region[28:33, 26:33].all()  # and the object enclosed by road


def test_road_region_respects_confidence():
    labels = scene()
    confidence = np.full(labels.shape, 0.5, np.float32)
    assert not refine.road_region(labels, confidence, 0, 0.9).any()
    region = refine.road_region(labels, confidence, 0, 0.4)
    assert region[labels == 0].all()


def test_road_region_empty_without_road():
    labels = np.full((10, 10), 10, np.uint8)
    assert not refine.road_region(labels, np.ones((10, 10), np.float32)).any()


def test_apply_road_region_keeps_the_inside_and_lowers_the_outside():
    score = np.array([[0.25, 3.0], [-1.0, 0.5]], np.float32)
    region = np.array([[True, False], [False, True]])
    shifted = refine.apply_road_region(score, region, drop=2.0)
    np.testing.assert_array_equal(shifted, [[0.25, 1.0], [-3.0, 0.5]])
    assert shifted.dtype == np.float32


def test_the_score_spread_is_the_std_of_the_finite_values(rng):
    score = rng.normal(3.0, 2.0, size=(37, 53)).astype(np.float32)
    assert refine.score_spread(score) == pytest.approx(np.std(score.astype(np.float64)), 1e-7)
    score[5, 5], score[6, 7], score[8, 9] = np.nan, np.inf, -np.inf
    finite = score[np.isfinite(score)].astype(np.float64)
    assert refine.score_spread(score) == pytest.approx(np.std(finite), rel=1e-7)
    assert refine.score_spread(np.full((4, 4), np.nan, np.float32)) == 0.0
    assert refine.score_spread(np.full((4, 4), 2.5, np.float32)) == 0.0


def test_vde_in_spread_units_means_the_same_on_any_scale_of_the_score(rng):
    """VDE(a·s + b) = a·VDE(s) + b for a > 0: the drop follows the score's scale, so a
    score and any affine rescaling of it rank pixels alike after VDE. In score units the
    same offset means more on a narrow score than on a wide one."""
    from anomaly_seg_ros.config import DetectorConfig

    summary = blocky_summary(rng, 64, 96)
    score = rng.normal(size=summary.shape).astype(np.float32)
    spread = DetectorConfig(vde=True, road_confidence=0.0)
    fixed = spread.replace(vde_units="score", vde_inside_boost=1.0, vde_outside_penalty=1.0)
    region = refine._road_region_of(summary, spread)
    assert 0 < region.mean() < 1
    base = refine.refine_score(score, summary, spread)
    for scale, offset in ((0.01, 0.0), (50.0, -7.0)):
        rescaled = (score * np.float32(scale) + np.float32(offset)).astype(np.float32)
        expected = base * np.float32(scale) + np.float32(offset)
        actual = refine.refine_score(rescaled, summary, spread)
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * scale)
        np.testing.assert_array_equal(actual[region], rescaled[region])
        drop = (rescaled - refine.refine_score(rescaled, summary, fixed))[~region]
        ulp = np.spacing(max(np.abs(rescaled).max(), np.float32(2.0)))  # of x and x - 2
        np.testing.assert_allclose(drop, 2.0, rtol=0, atol=2 * ulp)  # 2, whatever the scale


def test_the_readable_vde_score_ranks_real_frames_as_the_boosted_one():
    """On frames of the bundled model: the published map is the paper's boosted map minus
    ``inside_boost``, so it ranks pixels as the boosted map does.

    The reference is the paper's map in float64 (+ boost inside the road region, − penalty
    outside, in the configured units), where subtracting the boost is an exact shift. The
    published float32 map may round distinct reference values to one (a tie), never swap
    two: it is non-decreasing along the reference's order, in either unit. With the
    bundled model's settings (energy, a drop of 2 score units, where the float32
    subtraction is mostly exact) its AP, FPR95 and AUROC equal the reference's to 1e-6.
    (A drop of any other value, such as a multiple of the frame's spread, rounds more
    differences to ties than the float64 map has, which moved AP by 4e-4 on these frames.)
    """
    from anomaly_seg_ros.config import config_from_params_file
    from anomaly_seg_ros.detector import Detector
    from anomaly_seg_ros.evaluation.pixel_metrics import ExactPixelEvaluator
    from anomaly_seg_ros.model.bundled import default_model_path
    from anomaly_seg_ros.pipeline.scores import compute_score, max_softmax
    from anomaly_seg_ros.refinement_spec import RoadRegion
    from demo.synthetic.generate import render_anomaly_frame
    from demo.synthetic.scene import World

    model = default_model_path()
    config = config_from_params_file(str(model.with_suffix(".params.yaml")))
    boost, penalty = config.vde_inside_boost, config.vde_outside_penalty
    assert config.vde and boost > 0 and config.vde_units == "score"
    readable, boosted = ExactPixelEvaluator(), ExactPixelEvaluator()
    with Detector.from_path(model, config, backend="onnxruntime") as detector:
        world = World(*detector.info.input_size, seed=23)  # not the drive's or the test's
        for index in range(3):
            frame = render_anomaly_frame(world, 23, index)
            result = detector.detect(frame.image)
            summary = result.summary
            score = compute_score(config.score_type, summary)
            # the score before VDE: with the model's other refinement steps, if any
            raw = refine.refine_score(score, summary, config.replace(vde=False))
            region = refine.road_region(
                summary.label, max_softmax(summary), config.road_class, config.road_confidence
            )
            assert 0 < region.mean() < 1
            for units in ("score", "spread"):
                road = RoadRegion.from_config(config.replace(vde_units=units))
                if units == config.vde_units:
                    published = result.score  # what the node publishes
                else:
                    published = refine.refine_score(
                        score, summary, config.replace(vde_units=units)
                    )
                # The paper's formulation in float64: + boost inside, − penalty outside,
                # where boost + penalty is the drop the package subtracts (as float32).
                unit = refine.score_spread(raw) if road.uses_spread else 1.0
                drop = road.outside_drop(unit)
                assert drop == pytest.approx((boost + penalty) * unit, rel=1e-6)
                lifted = raw + np.float64(boost) * unit
                reference = np.where(region, lifted, lifted - np.float64(drop))
                assert published.shape == reference.shape  # camera size = network size
                np.testing.assert_array_equal(published[region], raw[region])
                np.testing.assert_array_equal(published[~region], raw[~region] - np.float32(drop))
                order = np.argsort(reference, axis=None, kind="stable")
                assert np.all(np.diff(published.ravel()[order]) >= 0)
                if units == config.vde_units:
                    label = frame.anomaly.astype(np.uint8)
                    readable.process(published, label)
                    boosted.process(reference, label)
    new, old = readable.evaluate(), boosted.evaluate()
    assert new.num_positive > 0
    assert new.average_precision == pytest.approx(old.average_precision, abs=1e-6)
    assert new.fpr_at_95_tpr == pytest.approx(old.fpr_at_95_tpr, abs=1e-6)
    assert new.auroc == pytest.approx(old.auroc, abs=1e-6)


def blocky_summary(rng, height, width):
    """Labels in rectangles of several classes (many boundaries), a road at the bottom."""
    from anomaly_seg_ros.model.summary import LogitSummary

    coarse = rng.integers(1, 6, size=(height // 16 + 1, width // 16 + 1)).astype(np.uint8)
    labels = np.kron(coarse, np.ones((16, 16), np.uint8))[:height, :width]
    labels[height * 2 // 3 :, width // 4 : width * 3 // 4] = 0
    max_logit = rng.normal(8.0, 2.0, size=(height, width)).astype(np.float32)
    return LogitSummary(
        label=np.ascontiguousarray(labels),
        max_logit=max_logit,
        min_logit=max_logit - 10.0,
        logsumexp=max_logit + rng.uniform(0.0, 0.5, size=(height, width)).astype(np.float32),
        entropy=rng.uniform(0.0, 1.0, size=(height, width)).astype(np.float32),
    )


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"boundary_width": 8, "boundary_iterations": 4, "smoothing_kernel": 5},
        {"dilated_smoothing": False, "vde": False},
        {"boundary_suppression": False, "smoothing_dilation": 3},
    ],
)
def test_row_strips_give_the_same_refinement(rng, settings):
    from anomaly_seg_ros.config import DetectorConfig
    from anomaly_seg_ros.pipeline.strips import StripPool

    height = 480
    summary = blocky_summary(rng, height, 157)
    config = DetectorConfig(
        boundary_suppression=True, dilated_smoothing=True, vde=True, road_confidence=0.0
    ).replace(**settings)
    halo = refine.local_refinement_halo(config)
    # Logit-like scores, and entropy-like ones spanning many magnitudes (1e-16 … 1), where
    # running-sum filters would make the last bits depend on where a strip starts.
    for score in (-summary.max_logit, np.exp(-rng.uniform(0, 37, summary.label.shape))):
        score = score.astype(np.float32)
        serial = refine.refine_score(score, summary, config)
        assert not np.array_equal(serial, score)
        for threads in (2, 3, 7):
            with StripPool(threads, min_rows=8) as pool:
                assert len(pool.strips(height, halo)) == threads
                parallel = refine.refine_score(score, summary, config, pool)
                np.testing.assert_array_equal(parallel, serial)


def test_a_nan_stays_local_in_boundary_suppression(rng):
    summary = blocky_summary(rng, 96, 96)
    score = rng.normal(size=(96, 96)).astype(np.float32)
    score[40, 40] = np.nan  # a block's centre (16 px blocks): 7 px from any band
    refined = refine.suppress_boundaries(score, summary.label, 4, 4)
    assert np.isnan(refined).sum() == 1  # the band values below it stay finite


def test_suppression_returns_new_arrays_though_scratch_is_reused(rng):
    summary = blocky_summary(rng, 64, 80)
    first = refine.suppress_boundaries(-summary.max_logit, summary.label)
    kept = first.copy()
    second = refine.suppress_boundaries(summary.max_logit, summary.label)
    np.testing.assert_array_equal(first, kept)
    assert not np.shares_memory(first, second)


def softmax_seeds(summary, road_class, min_confidence):
    """The seed test as first written: a softmax map compared with ``min_confidence``."""
    confidence = np.exp(summary.max_logit - summary.logsumexp)
    return (summary.label == road_class) & (confidence >= np.float32(min_confidence))


@pytest.mark.parametrize("min_confidence", [0.0, 0.4, 0.5, 0.9, 0.99, 0.999999, 1.0])
def test_road_seeds_in_log_space_are_the_softmax_seeds(rng, min_confidence):
    from anomaly_seg_ros.model.summary import LogitSummary

    shape = (300, 401)
    bound = log_confidence_threshold(min_confidence)
    # Log-confidences around the threshold, ulp by ulp, besides a wide spread and 0.
    near = np.nextafter(
        np.full(shape, bound if np.isfinite(bound) else -1.0, np.float32),
        np.float32(rng.choice([-np.inf, np.inf], size=shape)),
    )
    spread = -rng.exponential(0.3, size=shape).astype(np.float32)
    log_confidence = np.where(rng.random(shape) < 0.5, near, spread).astype(np.float32)
    log_confidence[::17] = 0.0
    max_logit = rng.normal(8.0, 3.0, size=shape).astype(np.float32)
    summary = LogitSummary(
        label=rng.choice(np.array([0, 0, 0, 3], np.uint8), size=shape),
        max_logit=max_logit,
        min_logit=max_logit - 10.0,
        logsumexp=(max_logit - log_confidence).astype(np.float32),
        entropy=np.zeros(shape, np.float32),
    )
    seeds = refine.road_seeds(summary, 0, min_confidence).view(bool)
    np.testing.assert_array_equal(seeds, softmax_seeds(summary, 0, min_confidence))
    region = refine.road_region(summary.label, None, seeds=refine.road_seeds(summary))
    np.testing.assert_array_equal(region, reference_row_span(softmax_seeds(summary, 0, 0.9)))


def dense_dilated_smoothing(score, kernel_size=7, sigma=1.0, dilation=6):
    """The smoothing as first written: sepFilter2D with the full dilated kernel."""
    import cv2

    taps = np.exp(-((np.arange(kernel_size) - (kernel_size - 1) / 2) ** 2) / (2 * sigma**2))
    taps /= taps.sum()
    kernel = np.zeros((kernel_size - 1) * dilation + 1, np.float32)
    kernel[::dilation] = taps
    return cv2.sepFilter2D(score, -1, kernel, kernel, borderType=cv2.BORDER_REPLICATE)


@pytest.mark.parametrize(
    "shape, settings",
    [
        ((64, 96), {}),
        ((5, 300), {}),
        ((300, 7), {}),
        ((257, 513), {"dilation": 3}),
        ((120, 160), {"kernel_size": 5, "sigma": 2.0, "dilation": 1}),
        ((40, 50), {"kernel_size": 1}),
    ],
)
def test_smoothing_with_the_non_zero_taps_equals_the_dense_kernel(rng, shape, settings):
    score = (rng.normal(size=shape) * 7).astype(np.float32)
    smoothed = refine.dilated_smoothing(score, **settings)
    assert smoothed.dtype == np.float32 and smoothed.shape == shape
    difference = np.abs(smoothed - dense_dilated_smoothing(score, **settings)).max()
    assert difference <= 1e-6 * np.abs(score).max()


@pytest.mark.parametrize("width, iterations", [(4, 4), (8, 4), (2, 1), (0, 1)])
def test_suppression_on_the_band_pixels_alone_is_bit_equal_to_the_dense_step(
    rng, monkeypatch, width, iterations
):
    summary = blocky_summary(rng, 200, 173)
    # Scores over many magnitudes, and a NaN and infinities, where any change of the
    # summation order would show.
    score = rng.normal(size=summary.shape) * np.exp(rng.uniform(-15, 15, summary.shape))
    score = score.astype(np.float32)
    score[15, 15], score[100, 60], score[150, 150] = np.inf, -np.inf, np.nan
    monkeypatch.setattr(refine, "SPARSE_BAND_FRACTION", 0.0)  # dense whenever there is a band
    dense = refine.suppress_boundaries(score, summary.label, width, iterations)
    monkeypatch.setattr(refine, "SPARSE_BAND_FRACTION", 1.0)  # always on the band alone
    sparse = refine.suppress_boundaries(score, summary.label, width, iterations)
    assert not np.array_equal(dense, score, equal_nan=True)
    np.testing.assert_array_equal(sparse, dense)


def bits(array: np.ndarray) -> np.ndarray:
    """The float32 bit patterns: equal bits, not just equal values (−0 ≠ 0, NaN = NaN)."""
    return np.ascontiguousarray(array, dtype=np.float32).view(np.int32)


def suppress_both_ways(monkeypatch, score, labels, width, iterations):
    """Boundary suppression forced through the dense and through the band-pixel path."""
    monkeypatch.setattr(refine, "SPARSE_BAND_FRACTION", 0.0)
    dense = refine.suppress_boundaries(score, labels, width, iterations)
    monkeypatch.setattr(refine, "SPARSE_BAND_FRACTION", 1.0)
    sparse = refine.suppress_boundaries(score, labels, width, iterations)
    return dense, sparse


def edge_case_labels(case: str, rng) -> np.ndarray:
    if case == "borders":  # classes that touch every border and fill a corner pixel
        labels = np.zeros((37, 41), np.uint8)
        labels[0, 5:20] = 1
        labels[-1, 10:] = 2
        labels[3:30, 0] = 3
        labels[:, -2:] = 4
        labels[-1, 0] = 5
        return labels
    if case == "all boundary":  # a checkerboard: every pixel is a class boundary
        return (np.indices((30, 33)).sum(axis=0) % 2).astype(np.uint8)
    if case == "no boundary":
        return np.full((25, 31), 7, np.uint8)
    if case == "three classes meet":  # ties in the dilation/erosion of the labels
        labels = np.zeros((32, 32), np.uint8)
        labels[:16, 16:] = 1
        labels[16:, :16] = 2
        labels[16:, 16:] = 1
        return labels
    if case == "thin row":
        return rng.integers(0, 2, size=(1, 60)).astype(np.uint8)
    if case == "thin column":
        return np.repeat(np.arange(4, dtype=np.uint8), 9)[:, None]
    if case == "noise":
        return rng.integers(0, 3, size=(48, 52)).astype(np.uint8)
    raise ValueError(case)


EDGE_CASES = (
    "borders",
    "all boundary",
    "no boundary",
    "three classes meet",
    "thin row",
    "thin column",
    "noise",
)


def awkward_scores(rng, shape) -> list[np.ndarray]:
    """Scores where any change of arithmetic would show: magnitudes 1e-38 … 1e30, signed
    zeros, NaN and infinities; ties (one value everywhere) and a few repeated values."""
    spread = rng.normal(size=shape) * np.exp(rng.uniform(-85, 69, shape))
    spread = spread.astype(np.float32)
    flat = spread.ravel()
    flat[rng.choice(flat.size, size=min(6, flat.size), replace=False)] = [
        np.nan,
        np.inf,
        -np.inf,
        -0.0,
        0.0,
        1e-45,
    ][: min(6, flat.size)]
    signed_zeros = np.where(rng.random(shape) < 0.5, -0.0, 0.0).astype(np.float32)
    ties = np.full(shape, 0.1, np.float32)
    repeated = rng.choice(np.array([-1.5, 0.0, 2.25], np.float32), size=shape)
    return [spread, signed_zeros, ties, repeated]


@pytest.mark.parametrize("case", EDGE_CASES)
@pytest.mark.parametrize(
    ("width", "iterations"), [(4, 4), (8, 4), (2, 2), (6, 3), (0, 1), (0, 3), (2, 4)]
)
def test_suppression_on_the_band_pixels_is_bit_equal_to_the_dense_step_on_edge_cases(
    rng, monkeypatch, case, width, iterations
):
    labels = edge_case_labels(case, rng)
    for score in awkward_scores(rng, labels.shape):
        dense, sparse = suppress_both_ways(monkeypatch, score, labels, width, iterations)
        np.testing.assert_array_equal(bits(sparse), bits(dense))
        if case == "no boundary":
            np.testing.assert_array_equal(bits(sparse), bits(score))
            assert not np.shares_memory(sparse, score)


@pytest.mark.parametrize("case", ["borders", "all boundary", "three classes meet", "noise"])
@pytest.mark.parametrize(("width", "iterations"), [(4, 4), (2, 1)])
def test_boundary_suppression_matches_reference_on_edge_cases(
    rng, monkeypatch, case, width, iterations
):
    labels = edge_case_labels(case, rng)
    score = rng.normal(size=labels.shape).astype(np.float32)
    expected = reference_suppression(score, labels, width, iterations)
    for fraction in (0.0, 1.0):  # dense, then on the band pixels alone
        monkeypatch.setattr(refine, "SPARSE_BAND_FRACTION", fraction)
        actual = refine.suppress_boundaries(score, labels, width, iterations)
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


def test_band_stages_are_the_widened_boundaries(rng):
    """Stage > i is iteration i's band: boundary pixels within L1 distance radii[i]."""
    labels = edge_case_labels("borders", rng)
    labels[10:20, 12:25] = 6
    boundaries = reference_boundaries(labels)
    ys, xs = np.nonzero(boundaries)
    rows, columns = np.indices(labels.shape)
    distance = np.full(labels.shape, np.iinfo(np.int32).max)
    for y, x in zip(ys, xs):
        distance = np.minimum(distance, np.abs(rows - y) + np.abs(columns - x))
    for width, iterations in [(4, 4), (8, 4), (6, 3), (2, 4), (0, 2)]:
        radii = BoundarySuppression(width, iterations).radii
        stage, widest = refine._band_stages(boundaries.astype(np.uint8), radii)
        np.testing.assert_array_equal(widest.view(bool), distance <= radii[0])
        for iteration, radius in enumerate(radii):
            np.testing.assert_array_equal(stage > iteration, distance <= radius)


def test_suppression_is_bit_equal_both_ways_on_real_frames(monkeypatch):
    """Frames of the bundled model, at network size (band ~20 %: dense by default) and
    upscaled 4× (band ~6 %: on the band pixels by default); every path gives the same bits."""
    import cv2

    from anomaly_seg_ros.config import config_from_params_file
    from anomaly_seg_ros.detector import Detector
    from anomaly_seg_ros.model.bundled import default_model_path
    from anomaly_seg_ros.pipeline.scores import compute_score
    from demo.synthetic.generate import render_anomaly_frame
    from demo.synthetic.scene import World

    threshold = refine.SPARSE_BAND_FRACTION
    model = default_model_path()
    config = config_from_params_file(str(model.with_suffix(".params.yaml")))
    with Detector.from_path(model, config, backend="onnxruntime") as detector:
        world = World(*detector.info.input_size, seed=29)  # not the drive's or other tests'
        summaries = [
            detector.detect(render_anomaly_frame(world, 29, i).image).summary for i in range(2)
        ]
    used = set()
    for summary in summaries:
        for scale in (1, 4):
            labels = cv2.resize(
                summary.label, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST
            )
            for score_type in ("max_logit", "entropy"):
                score = compute_score(score_type, summary)
                score = cv2.resize(score, None, fx=scale, fy=scale)
                monkeypatch.setattr(refine, "SPARSE_BAND_FRACTION", threshold)
                default = refine.suppress_boundaries(score, labels)
                dense, sparse = suppress_both_ways(monkeypatch, score, labels, 4, 4)
                assert not np.array_equal(dense, score)
                np.testing.assert_array_equal(bits(sparse), bits(dense))
                np.testing.assert_array_equal(bits(default), bits(dense))
            _, widest = refine._band_stages(
                refine._boundary_mask(labels), BoundarySuppression(4, 4).radii
            )
            used.add(bool(widest.mean() <= threshold))
    assert used == {True, False}  # both defaults were exercised
