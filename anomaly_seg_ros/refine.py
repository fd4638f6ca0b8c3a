"""Score refinement: SML boundary suppression, dilated smoothing, VDE road region.

All functions are vectorized numpy/OpenCV over whole maps (no per-pixel or per-row
Python loops) and pure: they return new arrays.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from anomaly_seg_ros.backends.base import LogitSummary
from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.scores import max_softmax

_CROSS_3X3 = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_SQUARE_3X3 = np.ones((3, 3), np.uint8)


def class_boundaries(labels: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose 3×3 neighbourhood holds more than one class.

    As in SML: a cross-shaped dilation of the label map differs from a square erosion.
    """
    return cv2.dilate(labels, _CROSS_3X3) != cv2.erode(labels, _SQUARE_3X3)


@functools.lru_cache(maxsize=16)
def _diamond(radius: int) -> np.ndarray:
    """Diamond (L1 ball) structuring element: the 3×3 cross dilated ``radius`` times."""
    offsets = np.abs(np.arange(-radius, radius + 1))
    return (offsets[:, None] + offsets[None, :] <= radius).astype(np.uint8)


def suppress_boundaries(
    score: np.ndarray, labels: np.ndarray, width: int = 4, iterations: int = 4
) -> np.ndarray:
    """SML iterative boundary suppression (Jung et al., ICCV 2021).

    Around class boundaries the max logit is unreliable. In each iteration, the boundary
    band (expanded by a radius that shrinks by ``width // iterations`` per iteration to 0
    in the last) is replaced by the mean of the non-band values in each pixel's 3×3
    neighbourhood, so that values propagate inward from outside the band.

    :param score: (H, W) float32 score map.
    :param labels: (H, W) uint8 predicted labels at the same size.
    :param width: initial band half-width in pixels.
    :param iterations: number of iterations; ``width`` must be a multiple of it.
    :return: (H, W) float32 refined score.
    """
    out = np.array(score, dtype=np.float32, copy=True)
    if iterations <= 0:
        return out
    boundaries = class_boundaries(labels).view(np.uint8)
    step = width // iterations
    for iteration in range(iterations):
        last = iteration == iterations - 1
        radius = 0 if (width == 0 or last) else width - step * iteration - 1
        band = cv2.dilate(boundaries, _diamond(radius)) if radius > 0 else boundaries
        inside = np.equal(band, 0).view(np.uint8)
        # Sums over 3×3 (replicated borders) of the non-band values, and their counts
        # (at most 9, so uint8 sums are exact). OpenCV's masked copies keep this at a few
        # full-map passes per iteration.
        masked = cv2.copyTo(out, inside)
        total = cv2.boxFilter(masked, -1, (3, 3), normalize=False, borderType=cv2.BORDER_REPLICATE)
        count = cv2.boxFilter(inside, -1, (3, 3), normalize=False, borderType=cv2.BORDER_REPLICATE)
        update = cv2.bitwise_and(band, cv2.compare(count, 0, cv2.CMP_GT))
        # cv2.divide yields 0 where count is 0; those pixels are not updated.
        cv2.copyTo(cv2.divide(total, count, dtype=cv2.CV_32F), update, out)
    return out


@functools.lru_cache(maxsize=16)
def _dilated_gaussian(size: int, sigma: float, dilation: int) -> np.ndarray:
    """1-D Gaussian taps (normalized) spread ``dilation`` apart, zeros between."""
    taps = np.exp(-((np.arange(size) - (size - 1) / 2) ** 2) / (2 * sigma**2))
    taps /= taps.sum()
    kernel = np.zeros((size - 1) * dilation + 1, np.float32)
    kernel[::dilation] = taps
    return kernel


def dilated_smoothing(
    score: np.ndarray, kernel_size: int = 7, sigma: float = 1.0, dilation: int = 6
) -> np.ndarray:
    """Dilated Gaussian smoothing (SML): a ``kernel_size``² Gaussian with dilated taps.

    The 2-D Gaussian is separable, and so is its dilated version; borders replicate.

    :return: (H, W) float32 smoothed score.
    """
    kernel = _dilated_gaussian(kernel_size, float(sigma), dilation)
    return cv2.sepFilter2D(
        np.asarray(score, dtype=np.float32),
        -1,
        kernel,
        kernel,
        borderType=cv2.BORDER_REPLICATE,
    )


def road_region(
    labels: np.ndarray,
    confidence: np.ndarray,
    road_class: int = 0,
    min_confidence: float = 0.9,
) -> np.ndarray:
    """VDE road region (COCO-DAG paper): the road with the holes it encloses.

    1. Seeds: pixels predicted as ``road_class`` with softmax confidence ≥ ``min_confidence``.
    2. Top-down fill: a pixel joins if a seed lies above it in its column, so objects lying
       on the road (holes in the road mask, below farther road) are filled in.
    3. Row-wise erosion from both sides: in every row, the filled region is cut back to the
       span between the leftmost and rightmost seed of that row, which removes what the
       fill dragged in beside the road.

    :param labels: (H, W) uint8 predicted labels.
    :param confidence: (H, W) float32 max softmax probability.
    :return: (H, W) bool road region.
    """
    seeds = cv2.bitwise_and(
        cv2.compare(labels, road_class, cv2.CMP_EQ),
        cv2.compare(confidence, float(min_confidence), cv2.CMP_GE),
    ).view(bool)  # OpenCV masks are 0/255; any non-zero byte reads as True
    height, width = seeds.shape
    # Small integer index grids keep the three broadcast comparisons cheap.
    index = np.int16 if max(height, width) < np.iinfo(np.int16).max else np.int32
    rows = np.arange(height, dtype=index)[:, None]
    columns = np.arange(width, dtype=index)[None, :]
    # First seed row of every column (height where a column has none): the top-down fill.
    # argmax along a contiguous axis stops at the first True, so transpose first.
    by_column = cv2.transpose(seeds.view(np.uint8)).view(bool)
    top = np.where(by_column.any(axis=1), np.argmax(by_column, axis=1), height)
    # First and last seed column of every row (an empty span where a row has none).
    row_has_seed = seeds.any(axis=1)
    left = np.where(row_has_seed, np.argmax(seeds, axis=1), width)
    right = width - 1 - np.argmax(seeds[:, ::-1], axis=1)
    region = rows >= top.astype(index)[None, :]
    region &= columns >= left.astype(index)[:, None]
    region &= columns <= right.astype(index)[:, None]
    return region


def apply_road_region(
    score: np.ndarray, region: np.ndarray, inside_boost: float, outside_penalty: float
) -> np.ndarray:
    """Raise the score inside the road region by ``inside_boost``, lower it outside.

    :return: (H, W) float32.
    """
    shifted = np.subtract(score, np.float32(outside_penalty), dtype=np.float32)
    np.add(shifted, np.float32(inside_boost + outside_penalty), out=shifted, where=region)
    return shifted


def refine_score(
    score: np.ndarray,
    summary: LogitSummary,
    config: DetectorConfig,
) -> np.ndarray:
    """Every refinement ``config`` switches on, in the Detector's order.

    SML boundary suppression → dilated smoothing → VDE road region. The one place this
    sequence is written: the Detector and the evaluation toolkit both call it.

    :param score: (h, w) float32 score at the network input size.
    :param summary: the frame's logit summary (labels and confidence for the refinements).
    :return: (h, w) float32 refined score.
    """
    if config.boundary_suppression:
        score = suppress_boundaries(
            score, summary.label, config.boundary_width, config.boundary_iterations
        )
    if config.dilated_smoothing:
        score = dilated_smoothing(
            score, config.smoothing_kernel, config.smoothing_sigma, config.smoothing_dilation
        )
    if config.vde:
        region = road_region(
            summary.label, max_softmax(summary), config.road_class, config.road_confidence
        )
        score = apply_road_region(
            score, region, config.vde_inside_boost, config.vde_outside_penalty
        )
    return score
