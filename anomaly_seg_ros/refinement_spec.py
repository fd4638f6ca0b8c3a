"""What each anomaly score and each refinement computes, written once.

The host (numpy/OpenCV: :mod:`anomaly_seg_ros.pipeline.scores`,
:mod:`anomaly_seg_ros.pipeline.refine`) and
the graph (torch operators exported to ONNX: :mod:`anomaly_seg_ros.networks.refine_graph`)
both read this module:

* the scores: :data:`SCORE_FORMULAS`, elementwise formulas over the logit summary written
  with arithmetic operators and a given ``exp``, so that the same function runs on numpy
  arrays and on torch tensors; :data:`SCORE_TYPES` is their list of names;
* each refinement's parameters (the :class:`~anomaly_seg_ros.config.DetectorConfig` fields
  it reads) and the constants derived from them: band radii, Gaussian taps, the reach of
  the dilated kernel, the float32 seed threshold, VDE's drop outside the road region.

Pure: numpy only, no OpenCV, no torch, nothing from the package (the config imports the
score list from here).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np


class ScoreMaps(Protocol):
    """The logit summary maps a score formula reads, as numpy arrays or torch tensors."""

    max_logit: Any
    min_logit: Any
    logsumexp: Any
    entropy: Any

    def exp(self, values: Any) -> Any:
        """Elementwise ``exp`` of the array library."""

    def class_mean(self) -> Any:
        """The SML mean of each pixel's predicted class (``sml`` only)."""

    def class_inverse_std(self) -> Any:
        """1 / the SML standard deviation of each pixel's predicted class (``sml`` only)."""


def _msp(maps: ScoreMaps) -> Any:
    """1 − max softmax = 1 − exp(max l − logsumexp l) (Hendrycks & Gimpel)."""
    return 1.0 - maps.exp(maps.max_logit - maps.logsumexp)


def _max_logit(maps: ScoreMaps) -> Any:
    """−max l (Hendrycks et al., "Scaling OoD detection")."""
    return -maps.max_logit


def _entropy(maps: ScoreMaps) -> Any:
    """−Σ p log p of the softmax, in nats (the summary's map itself)."""
    return maps.entropy


def _energy(maps: ScoreMaps) -> Any:
    """−T·logsumexp(l / T) with T = 1 (Liu et al. 2020)."""
    return -maps.logsumexp


def _max_min_logit(maps: ScoreMaps) -> Any:
    """−(max l − min l), the spread of the logits."""
    return maps.min_logit - maps.max_logit


def _sml(maps: ScoreMaps) -> Any:
    """−(max l − μ_ĉ) / σ_ĉ, per predicted class ĉ (Jung et al. 2021)."""
    return -((maps.max_logit - maps.class_mean()) * maps.class_inverse_std())


#: Score name → formula; higher = more anomalous, always. A new score is one entry here.
SCORE_FORMULAS = {
    "msp": _msp,
    "max_logit": _max_logit,
    "entropy": _entropy,
    "energy": _energy,
    "max_min_logit": _max_min_logit,
    "sml": _sml,
}
#: Anomaly scores by name.
SCORE_TYPES = tuple(SCORE_FORMULAS)
#: Scores that need per-class statistics of the model (an SML stats file).
SCORES_WITH_STATISTICS = ("sml",)
#: Scores computed from the logit summary alone.
SCORES_WITHOUT_STATISTICS = tuple(s for s in SCORE_TYPES if s not in SCORES_WITH_STATISTICS)


_R = TypeVar("_R", bound="_Refinement")


@dataclass(frozen=True)
class _Refinement:
    """One refinement's parameters: fields named as the DetectorConfig fields they mirror."""

    #: The DetectorConfig switch that turns the refinement on.
    SWITCH: ClassVar[str] = ""

    @classmethod
    def parameters(cls) -> tuple[str, ...]:
        """The DetectorConfig fields this refinement reads, besides its switch."""
        return tuple(field.name for field in fields(cls))

    @classmethod
    def from_config(cls: type[_R], config: object) -> _R:
        """This refinement's parameters taken from a DetectorConfig (or any object with
        those attributes)."""
        return cls(**{name: getattr(config, name) for name in cls.parameters()})


@dataclass(frozen=True)
class BoundarySuppression(_Refinement):
    """SML iterative boundary suppression (Jung et al., ICCV 2021)."""

    SWITCH: ClassVar[str] = "boundary_suppression"
    boundary_width: int
    boundary_iterations: int

    @property
    def radii(self) -> tuple[int, ...]:
        """Per iteration, the L1 radius the class boundaries are widened by: from
        ``width − 1`` down by ``width // iterations`` per iteration, 0 in the last (not
        increasing, so the bands are nested); empty for no iterations."""
        width, iterations = self.boundary_width, self.boundary_iterations
        if iterations <= 0:
            return ()
        step = width // iterations
        return tuple(
            0 if (width == 0 or index == iterations - 1) else width - step * index - 1
            for index in range(iterations)
        )

    @property
    def halo(self) -> int:
        """Rows within which the suppression reads its input: the class-boundary test
        (1 row), the band (``width − 1``) and one 3×3 average per iteration."""
        return self.boundary_width + self.boundary_iterations + 1


@dataclass(frozen=True)
class DilatedSmoothing(_Refinement):
    """SML dilated Gaussian smoothing: a ``kernel``² Gaussian with taps ``dilation`` apart,
    separable, replicated borders."""

    SWITCH: ClassVar[str] = "dilated_smoothing"
    smoothing_kernel: int
    smoothing_sigma: float
    smoothing_dilation: int

    @property
    def taps(self) -> tuple[float, ...]:
        """The ``kernel`` normalized 1-D Gaussian taps (float32 values), centre in the
        middle."""
        return gaussian_taps(self.smoothing_kernel, float(self.smoothing_sigma))

    @property
    def reach(self) -> int:
        """Pixels from the centre to the outermost tap: the border padding and the halo."""
        return (self.smoothing_kernel // 2) * self.smoothing_dilation

    @property
    def offsets(self) -> range:
        """Offsets of the non-zero taps into a map padded by :attr:`reach` on each side."""
        return range(0, 2 * self.reach + 1, self.smoothing_dilation)


@functools.lru_cache(maxsize=16)
def gaussian_taps(size: int, sigma: float) -> tuple[float, ...]:
    """``size`` normalized 1-D Gaussian taps (float32 values), centre in the middle."""
    taps = np.exp(-((np.arange(size) - (size - 1) / 2) ** 2) / (2 * sigma**2))
    return tuple(float(t) for t in (taps / taps.sum()).astype(np.float32))


@functools.lru_cache(maxsize=64)
def log_confidence_threshold(min_confidence: float) -> float:
    """The least float32 ``x`` with ``float32 exp(x) ≥ float32 min_confidence`` (a float32
    value, as a Python float).

    ``exp`` is monotone, so ``log_confidence ≥ this`` holds exactly where the softmax
    test ``exp(log_confidence) ≥ min_confidence`` holds on float32 values: the seed test
    without a softmax map, and without the rounding of a plain ``ln c``.
    """
    target = np.float32(min_confidence)
    if target <= 0:
        return -math.inf

    # Ordered int32 keys of the non-positive float32s: key k <-> -(bits k); bisect on them.
    def value(key: int) -> float:
        return -float(np.array(key, np.int32).view(np.float32))

    def passes(key: int) -> bool:
        with np.errstate(over="ignore", under="ignore"):
            return bool(np.exp(np.array([value(key)], np.float32))[0] >= target)

    if not passes(0):  # not even exp(0) = 1 reaches it (min_confidence > 1)
        return math.inf
    low, high = 0, int(np.array(np.inf, np.float32).view(np.int32))  # passes(low), not high
    while high - low > 1:
        middle = (low + high) // 2
        if passes(middle):
            low = middle
        else:
            high = middle
    return value(low)


#: What VDE's boost and penalty are measured in: ``spread``, the score's spread over the
#: frame (:meth:`RoadRegion.outside_drop`), the same on every score's scale; ``score``,
#: the score's own units (fixed offsets, the package's form before: a drop that is most
#: of entropy's range and little of energy's).
VDE_UNITS = ("spread", "score")


@dataclass(frozen=True)
class RoadRegion(_Refinement):
    """VDE (COCO-DAG paper): scores inside the road region count, outside they sink.

    Seeds are pixels predicted ``road_class`` with softmax ≥ ``road_confidence``; the
    region is their row span. The paper raises the inside by ``vde_inside_boost`` and
    lowers the outside by ``vde_outside_penalty``; published is the same ranking minus the
    constant boost (inside unchanged, outside lowered by :meth:`outside_drop`), so that the
    road keeps its own score values.

    The *spread* of a frame's score, VDE's unit with ``vde_units: spread``, is the
    standard deviation of its finite values over the whole map VDE is applied to (the
    score after the other refinements, at the network input size; 0 without finite
    values). Both forms compute it in their own arithmetic (the host in float64, the
    graph in float32 sums by rows, then over rows) and round it to float32.
    """

    SWITCH: ClassVar[str] = "vde"
    road_class: int
    road_confidence: float
    vde_inside_boost: float
    vde_outside_penalty: float
    vde_units: str

    @property
    def uses_spread(self) -> bool:
        """Whether the drop scales with the frame's score spread."""
        return self.vde_units == "spread"

    @property
    def drop_amount(self) -> float:
        """boost + penalty, rounded to float32: the drop in :attr:`vde_units`."""
        return float(np.float32(self.vde_inside_boost + self.vde_outside_penalty))

    @property
    def log_confidence(self) -> float:
        """The seed test in log space: ``max_logit − logsumexp ≥`` this."""
        return log_confidence_threshold(float(self.road_confidence))

    def outside_drop(self, spread: float) -> float:
        """How far the score sinks outside the region, a float32 value: the float32
        product :attr:`drop_amount` × ``spread`` with ``spread`` units, else
        :attr:`drop_amount` (``spread`` unused).

        :param spread: the frame's score spread (see the class docstring).
        """
        if not self.uses_spread:
            return self.drop_amount
        return float(np.float32(self.drop_amount) * np.float32(spread))


#: The refinements in the order they are applied.
REFINEMENTS: tuple[type[_Refinement], ...] = (BoundarySuppression, DilatedSmoothing, RoadRegion)
