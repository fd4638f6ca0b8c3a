"""Score refinement: SML boundary suppression, dilated smoothing, VDE road region.

The host form: vectorized numpy/OpenCV over whole maps or over lists of pixels (no
per-pixel or per-row Python loops), pure (they return new arrays). Each refinement's
parameters and derived constants (band radii, taps, seed threshold, VDE drop) come from
:mod:`anomaly_seg_ros.refinement_spec`, which the graph form reads too.
"""

from __future__ import annotations

import functools
from concurrent.futures import Future

# OpenCV takes a scalar as compare()'s src2; its stubs know only arrays (the ignores below).
import cv2
import numpy as np

from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.model.summary import LogitSummary
from anomaly_seg_ros.pipeline.strips import StripPool, ThreadScratch
from anomaly_seg_ros.refinement_spec import (
    BoundarySuppression,
    DilatedSmoothing,
    RoadRegion,
    log_confidence_threshold,
)

_CROSS_3X3 = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_SQUARE_3X3 = np.ones((3, 3), np.uint8)
_ONES_3X3 = np.ones((3, 3), np.float32)


_SCRATCH = ThreadScratch()


def class_boundaries(labels: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose 3×3 neighbourhood holds more than one class.

    As in SML: a cross-shaped dilation of the label map differs from a square erosion.
    """
    return _boundary_mask(labels) != 0


def _boundary_mask(labels: np.ndarray) -> np.ndarray:
    """:func:`class_boundaries` as a uint8 0/1 mask in scratch memory."""
    shape = labels.shape
    dilated = cv2.dilate(labels, _CROSS_3X3, dst=_SCRATCH.get("dilated", shape, np.uint8))
    eroded = cv2.erode(labels, _SQUARE_3X3, dst=_SCRATCH.get("eroded", shape, np.uint8))
    # 0/1, not OpenCV's 0/255: a bool view of it is a true bool array (np.flatnonzero).
    edges: np.ndarray = np.not_equal(dilated, eroded, out=_SCRATCH.get("edges", shape, np.bool_))
    return edges.view(np.uint8)


def _band_stages(boundaries: np.ndarray, radii: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """In how many iterations each pixel lies in the band, and the first iteration's band.

    Iteration ``i``'s band is ``boundaries`` widened by the L1 radius ``radii[i]`` (a
    diamond: the 3×3 cross dilated that many times, within the map). Radii do not grow,
    so the bands are nested and a pixel is in the band of the first ``stage`` iterations:
    iteration ``i``'s band is ``stage > i``.

    :param boundaries: (H, W) uint8 0/1 class boundaries.
    :param radii: ``BoundarySuppression.radii`` (:mod:`~anomaly_seg_ros.refinement_spec`),
        not empty.
    :return: (H, W) uint8 stages and (H, W) uint8 0/1 widest band, both scratch memory.
    """
    shape = boundaries.shape
    stage = _SCRATCH.get("stage", shape, np.uint8)
    stage.fill(0)
    widened = boundaries
    buffers = (_SCRATCH.get("widened", shape, np.uint8), _SCRATCH.get("widened2", shape, np.uint8))
    for radius in range(radii[0] + 1):
        if radius:
            widened = cv2.dilate(widened, _CROSS_3X3, dst=buffers[radius % 2])
        for _ in range(radii.count(radius)):
            cv2.add(stage, widened, dst=stage)
    return stage, widened


def suppress_boundaries(
    score: np.ndarray, labels: np.ndarray, width: int = 4, iterations: int = 4
) -> np.ndarray:
    """SML iterative boundary suppression (Jung et al., ICCV 2021).

    Around class boundaries the max logit is unreliable. In each iteration, the boundary
    band (expanded by a radius that shrinks by ``width // iterations`` per iteration to 0
    in the last) is replaced by the mean of the non-band values in each pixel's 3×3
    neighbourhood (replicated borders), so that values propagate inward from outside
    the band. Every pixel of an iteration reads the values from before it.

    The bands are nested and usually a few per cent of the map, so the work is done on
    the widest band's pixels alone (:func:`_suppress_on_band`); a map that is mostly band
    goes through 3×3 filters over the whole map (:func:`_suppress_dense`). Both give the
    same bits (test).

    :param score: (H, W) float32 score map.
    :param labels: (H, W) uint8 predicted labels at the same size.
    :param width: initial band half-width in pixels.
    :param iterations: number of iterations; ``width`` must be a multiple of it.
    :return: (H, W) float32 refined score.
    """
    out = np.array(score, dtype=np.float32, copy=True)
    radii = BoundarySuppression(width, iterations).radii
    if not radii:
        return out
    stage, widest = _band_stages(_boundary_mask(labels), radii)
    band_size = cv2.countNonZero(widest)
    if band_size == 0:
        return out
    if band_size <= SPARSE_BAND_FRACTION * widest.size:
        _suppress_on_band(out, stage, widest, iterations)
    else:
        _suppress_dense(out, stage, iterations)
    return out


#: Widest band's share of the map up to which suppression works on the band's pixels
#: alone. Measured (CPU time of one call, width 4, 4 iterations, bundled-model labels
#: upscaled; 2-core machine under load): band pixels alone / dense 2.2 at a 19 % band
#: (256×512), 1.3 at 11 % (512×1024), 0.73 at 6.3 % (1024×2048), 0.49 at 3.4 %
#: (2048×4096).
SPARSE_BAND_FRACTION = 0.08


def _suppress_dense(out: np.ndarray, stage: np.ndarray, iterations: int) -> None:
    """The suppression steps over the whole map with 3×3 filters, in place on ``out``.

    :param out: (H, W) float32 C-contiguous score, updated in place.
    :param stage: (H, W) uint8 :func:`_band_stages`.
    :param iterations: number of iterations.
    """
    shape = out.shape
    in_band = _SCRATCH.get("in_band", shape, np.bool_)
    outside = _SCRATCH.get("outside", shape, np.bool_)
    masked = _SCRATCH.get("masked", shape, np.float32)
    total = _SCRATCH.get("total", shape, np.float32)
    count = _SCRATCH.get("count", shape, np.uint8)
    counted = _SCRATCH.get("counted", shape, np.uint8)
    update = _SCRATCH.get("update", shape, np.uint8)
    mean = _SCRATCH.get("mean", shape, np.float32)
    border = cv2.BORDER_REPLICATE
    for iteration in range(iterations):
        band = np.greater(stage, iteration, out=in_band).view(np.uint8)
        # 0/1 (not 0/255) so that 3×3 sums of it count pixels; at most 9 fits in uint8.
        inside = np.less_equal(stage, iteration, out=outside).view(np.uint8)
        # Sums over 3×3 (replicated borders) of the non-band values, and their counts.
        masked.fill(0)
        cv2.copyTo(out, inside, masked)
        # A direct 3×3 convolution, not boxFilter: boxFilter's running sums make each float
        # result depend on where the map starts (row strips would differ from one pass in
        # the last bits) and carry a NaN or inf down the whole column.
        cv2.filter2D(masked, -1, _ONES_3X3, dst=total, borderType=border)
        cv2.boxFilter(inside, -1, (3, 3), dst=count, normalize=False, borderType=border)  # exact
        cv2.compare(count, 0, cv2.CMP_GT, dst=counted)  # type: ignore[call-overload]  # scalar src2
        cv2.bitwise_and(band, counted, dst=update)
        # cv2.divide yields 0 where count is 0; those pixels are not updated.
        cv2.divide(total, count, dst=mean, dtype=cv2.CV_32F)
        cv2.copyTo(mean, update, out)


def _suppress_on_band(
    out: np.ndarray, stage: np.ndarray, widest: np.ndarray, iterations: int
) -> None:
    """:func:`_suppress_dense`'s result, computed on the widest band's pixels alone.

    Only band pixels change, and each reads only its 3×3 neighbours. Once per call each
    band pixel gets the flat indices of its 9 neighbours (replicated borders) and their
    stages; band pixels are ordered by stage, so that an iteration's band is a prefix of
    that list (bands are nested). An iteration then adds, one neighbour slot at a time,
    the values of its band pixels' neighbours that lie outside its band, and writes the
    means back.

    The dense step's arithmetic per pixel, in its order: the non-band neighbour values
    (0 for band neighbours) summed in row-major order starting from 0 — the order
    ``cv2.filter2D`` sums a 3×3 kernel of ones in, so the sums are bit-equal (test) —
    and divided in float32 by the count of non-band neighbours where that is not 0. A
    sum that starts from +0 is never −0, so leaving out the band neighbours' +0 changes
    no bit.

    :param widest: (H, W) uint8 0/1 first iteration's band.
    Other parameters as :func:`_suppress_dense`.
    """
    height, width = out.shape
    flat = out.ravel()
    stages = stage.ravel()
    band_pixels = np.flatnonzero(widest.view(np.bool_))
    # Ordered by stage, highest first (a counting sort: stages are 1 … iterations), so
    # that the band pixels of iteration i or later, those with stage > i, are a prefix.
    band_stages = stages[band_pixels]
    by_stage = [np.flatnonzero(band_stages == s) for s in range(iterations, 0, -1)]
    band_pixels = band_pixels[np.concatenate(by_stage)]
    sizes = np.cumsum([0] + [part.size for part in by_stage])[::-1]  # sizes[i]: stage > i
    rows = band_pixels // width
    columns = band_pixels - rows * width
    row_starts = [np.clip(rows + dy, 0, height - 1) * width for dy in (-1, 0, 1)]
    column_at = [np.clip(columns + dx, 0, width - 1) for dx in (-1, 0, 1)]
    neighbours = np.empty((9, band_pixels.size), np.intp)
    for dy in range(3):
        for dx in range(3):
            np.add(row_starts[dy], column_at[dx], out=neighbours[3 * dy + dx])
    neighbour_stages = stages[neighbours]
    for iteration in range(iterations):
        size = int(sizes[iteration])
        if size == 0:
            break  # nested bands: the later ones are empty too
        counted = np.less_equal(neighbour_stages[:, :size], iteration)
        # The pairs (band pixel, neighbour outside the band), a slot at a time in slot
        # order: the dense step's sum without its + 0 for band neighbours (docstring).
        sources = [np.flatnonzero(counted[slot]) for slot in range(9)]
        values = [flat[neighbours[slot, at]] for slot, at in enumerate(sources)]
        total = np.zeros(size, np.float32)
        for at, value in zip(sources, values):
            total[at] += value
        count = counted.sum(axis=0, dtype=np.uint8)
        update = np.flatnonzero(count)
        # All neighbours were read above: writing now is the dense step's read-before.
        flat[band_pixels[update]] = total[update] / count[update].astype(np.float32)


#: Rows per tile of :func:`dilated_smoothing`: a tile's partial sums stay in the L2 cache.
_SMOOTHING_TILE_BYTES = 128 * 1024


def _tap_sum(views: list[np.ndarray], taps: tuple[float, ...], out: np.ndarray) -> None:
    """``out = Σ taps[i] · views[i]`` in float32, one multiply-add per tap."""
    np.multiply(views[0], np.float32(taps[0]), out=out)
    for view, tap in zip(views[1:], taps[1:]):
        cv2.scaleAdd(view, tap, out, dst=out)


def dilated_smoothing(
    score: np.ndarray, kernel_size: int = 7, sigma: float = 1.0, dilation: int = 6
) -> np.ndarray:
    """Dilated Gaussian smoothing (SML): a ``kernel_size``² Gaussian with dilated taps.

    The 2-D Gaussian is separable, and so is its dilated version; borders replicate. Each
    1-D pass sums the ``kernel_size`` non-zero taps of shifted maps (not the dense
    ``(kernel_size − 1)·dilation + 1``-tap kernel, whose other taps are zero): the same
    value up to float32 rounding of a different summation order, |Δ| ≤ 1e-6 · max |score|
    (both sums of 7 products with weights summing to 1, a few ulps each).

    :return: (H, W) float32 smoothed score.
    """
    spec = DilatedSmoothing(kernel_size, sigma, dilation)
    taps, reach, offsets = spec.taps, spec.reach, spec.offsets
    source = np.ascontiguousarray(score, dtype=np.float32)
    height, width = source.shape
    padded = cv2.copyMakeBorder(source, reach, reach, 0, 0, cv2.BORDER_REPLICATE)
    out = np.empty((height, width), np.float32)
    # Row tiles: the vertical sum of a tile, then its horizontal sum, while it is in cache.
    rows = max(1, _SMOOTHING_TILE_BYTES // (4 * (width + 2 * reach)))
    vertical = np.empty((rows, width), np.float32)
    for top in range(0, height, rows):
        count = min(rows, height - top)
        column_sum = vertical[:count]
        _tap_sum([padded[top + o : top + o + count] for o in offsets], taps, column_sum)
        wide = cv2.copyMakeBorder(column_sum, 0, 0, reach, reach, cv2.BORDER_REPLICATE)
        _tap_sum([wide[:, o : o + width] for o in offsets], taps, out[top : top + count])
    return out


def road_seeds(
    summary: LogitSummary, road_class: int = 0, min_confidence: float = 0.9
) -> np.ndarray:
    """(H, W) uint8 0/255: pixels predicted ``road_class`` with softmax ≥ ``min_confidence``.

    In log space, ``max_logit − logsumexp ≥ ln c`` (see :func:`log_confidence_threshold`):
    the same pixels as comparing :func:`~anomaly_seg_ros.pipeline.scores.max_softmax` with ``c``.
    """
    shape = summary.label.shape
    log_confidence = cv2.subtract(
        summary.max_logit, summary.logsumexp, dst=_SCRATCH.get("log_conf", shape, np.float32)
    )
    confident = cv2.compare(  # type: ignore[call-overload]  # scalar src2
        log_confidence,
        log_confidence_threshold(float(min_confidence)),
        cv2.CMP_GE,
        dst=_SCRATCH.get("confident", shape, np.uint8),
    )
    road = cv2.compare(summary.label, road_class, cv2.CMP_EQ)  # type: ignore[call-overload]  # scalar src2
    return cv2.bitwise_and(road, confident, dst=road)


def road_region(
    labels: np.ndarray,
    confidence: np.ndarray | None,
    road_class: int = 0,
    min_confidence: float = 0.9,
    seeds: np.ndarray | None = None,
) -> np.ndarray:
    """VDE road region (COCO-DAG paper): the road with the objects lying on it.

    1. Seeds: pixels predicted as ``road_class`` with softmax confidence ≥ ``min_confidence``.
    2. Row span (the paper's row-wise erosion from both sides back to the first true road
       pixel): a pixel is in the region iff its row has a seed at or left of it and one at
       or right of it. Objects on the road (holes in the road mask between road pixels of
       the same row) are inside; whatever lies beside the outermost road pixels is not.

    :param labels: (H, W) uint8 predicted labels.
    :param confidence: (H, W) float32 max softmax probability (unused with ``seeds``).
    :param seeds: (H, W) 0/non-zero seeds already found (:func:`road_seeds`), instead of
        ``labels``/``confidence``.
    :return: (H, W) bool road region.
    """
    if seeds is None:
        if confidence is None:
            raise ValueError("road_region needs the confidence map, or the seeds")
        seeds = cv2.bitwise_and(
            cv2.compare(labels, road_class, cv2.CMP_EQ),  # type: ignore[call-overload]  # scalar src2
            cv2.compare(confidence, float(min_confidence), cv2.CMP_GE),  # type: ignore[call-overload]  # scalar src2
        )
    seeds = seeds.view(bool)  # OpenCV masks are 0/255; any non-zero byte reads as True
    width = seeds.shape[1]
    # Small integer index grids keep the broadcast comparisons cheap.
    index = np.int16 if max(seeds.shape) < np.iinfo(np.int16).max else np.int32
    columns = np.arange(width, dtype=index)[None, :]
    # First and last seed column of every row (an empty span where a row has none).
    row_has_seed = seeds.any(axis=1)
    left = np.where(row_has_seed, np.argmax(seeds, axis=1), width)
    right = width - 1 - np.argmax(seeds[:, ::-1], axis=1)
    region = columns >= left.astype(index)[:, None]
    region &= columns <= right.astype(index)[:, None]
    return region


def score_spread(score: np.ndarray) -> float:
    """The frame's score spread, VDE's unit: the standard deviation of the finite values
    (0 without any), in float64, rounded to float32
    (:class:`~anomaly_seg_ros.refinement_spec.RoadRegion`).

    :param score: (H, W) float32.
    """
    source = np.ascontiguousarray(score, dtype=np.float32)
    finite = None
    all_finite, _ = cv2.checkRange(source)
    if not all_finite:  # a NaN or an infinity: leave it out
        finite = np.isfinite(source).view(np.uint8)
        if not finite.any():
            return 0.0
    _, std = cv2.meanStdDev(source, mask=finite)  # accumulates in float64
    return float(np.float32(std[0, 0]))


def apply_road_region(score: np.ndarray, region: np.ndarray, drop: float) -> np.ndarray:
    """Keep the score inside the road region, lower it outside by ``drop``.

    The VDE paper raises the inside by a boost and lowers the outside by a penalty; that
    saturates a heat map over the whole road. Published is the same map minus the
    constant boost (so the same ranking, AP and FPR95, and a mask threshold ``boost``
    lower): the road keeps its own score values, on which an obstacle stands out, and
    everything outside the region sinks by ``drop``
    (:meth:`~anomaly_seg_ros.refinement_spec.RoadRegion.outside_drop`: boost + penalty, in
    score units or in units of the frame's score spread).

    :param score: (H, W) float32.
    :param region: (H, W) bool road region.
    :param drop: how far the outside sinks (as float32).
    :return: (H, W) float32, a new array.
    """
    lowered = np.subtract(score, np.float32(drop), dtype=np.float32)
    np.copyto(lowered, score, where=region)
    return lowered


def _road_region_of(summary: LogitSummary, config: DetectorConfig) -> np.ndarray:
    seeds = road_seeds(summary, config.road_class, config.road_confidence)
    return road_region(summary.label, None, seeds=seeds)


def local_refinement_halo(config: DetectorConfig) -> int:
    """Rows within which boundary suppression + dilated smoothing read their input (the
    sum of the halos of those switched on)."""
    halo = 0
    if config.boundary_suppression:
        halo += BoundarySuppression.from_config(config).halo
    if config.dilated_smoothing:
        halo += DilatedSmoothing.from_config(config).reach
    return halo


def _local_refinement(config: DetectorConfig, score: np.ndarray, labels: np.ndarray) -> np.ndarray:
    if config.boundary_suppression:
        score = suppress_boundaries(
            score, labels, config.boundary_width, config.boundary_iterations
        )
    if config.dilated_smoothing:
        score = dilated_smoothing(
            score, config.smoothing_kernel, config.smoothing_sigma, config.smoothing_dilation
        )
    return score


def refine_score(
    score: np.ndarray,
    summary: LogitSummary,
    config: DetectorConfig,
    pool: StripPool | None = None,
) -> np.ndarray:
    """Every refinement ``config`` switches on, in the Detector's order.

    SML boundary suppression → dilated smoothing → VDE road region. The one place this
    sequence is written: the Detector and the evaluation toolkit both call it.

    :param score: (h, w) float32 score at the network input size.
    :param summary: the frame's logit summary (labels and confidence for the refinements).
    :param pool: run suppression and smoothing in row strips on this pool, and the road
        region beside them; the result is identical to running without one.
    :return: (h, w) float32 refined score.
    """
    find_region = functools.partial(_road_region_of, summary, config)
    # The road region needs only the summary: on a pool, find it while the strips run.
    region: Future[np.ndarray] | None = None
    if config.vde and pool is not None:
        region = pool.submit(find_region)
    if config.boundary_suppression or config.dilated_smoothing:
        local = functools.partial(_local_refinement, config)
        if pool is not None:
            score = pool.map_rows(local, (score, summary.label), local_refinement_halo(config))
        else:
            score = local(score, summary.label)
    if config.vde:
        road = RoadRegion.from_config(config)
        drop = road.outside_drop(score_spread(score) if road.uses_spread else 0.0)
        score = apply_road_region(
            score, region.result() if region is not None else find_region(), drop
        )
    return score
