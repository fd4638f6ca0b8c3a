"""Every score type and refinement variant from one logit summary.

The Detector computes one score per frame (its configured type); evaluation wants all of
them from the same inference pass. A :class:`ScoreSpec` names one score type plus one
refinement variant, and :func:`compute_score_map` runs the Detector's own post-processing
(:func:`anomaly_seg_ros.pipeline.postprocess.anomaly_score`, which
:meth:`anomaly_seg_ros.detector.Detector.detect` runs too): score → SML boundary
suppression → dilated smoothing → VDE → bilinear resize.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from anomaly_seg_ros.config import SCORE_TYPES, DetectorConfig
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.model.summary import LogitSummary
from anomaly_seg_ros.pipeline.postprocess import anomaly_score
from anomaly_seg_ros.pipeline.strips import StripPool

LOGGER = logging.getLogger(__name__)

#: Refinement variants: name → DetectorConfig switches. "refined" is the SML refinement
#: (boundary suppression + dilated smoothing, Jung et al. 2021); "vde" the road region.
VARIANTS: dict[str, dict[str, bool]] = {
    "plain": {"boundary_suppression": False, "dilated_smoothing": False, "vde": False},
    "refined": {"boundary_suppression": True, "dilated_smoothing": True, "vde": False},
    "vde": {"boundary_suppression": False, "dilated_smoothing": False, "vde": True},
    "refined+vde": {"boundary_suppression": True, "dilated_smoothing": True, "vde": True},
}


@dataclass(frozen=True)
class ScoreSpec:
    """One evaluated score: a score type with a refinement variant."""

    score_type: str
    variant: str = "plain"

    @property
    def name(self) -> str:
        """``max_logit`` for the plain variant, else ``max_logit+refined`` etc."""
        return self.score_type if self.variant == "plain" else f"{self.score_type}+{self.variant}"

    @classmethod
    def parse(cls, name: str) -> ScoreSpec:
        """Inverse of :attr:`name`.

        :raises ConfigError: unknown score type or variant.
        """
        score_type, _, variant = name.partition("+")
        spec = cls(score_type, variant or "plain")
        spec.check()
        return spec

    def check(self) -> None:
        """:raises ConfigError: unknown score type or variant."""
        if self.score_type not in SCORE_TYPES:
            raise ConfigError(
                f"unknown score {self.score_type!r}; valid: {', '.join(SCORE_TYPES)}"
            )
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown variant {self.variant!r}; valid: {', '.join(VARIANTS)}")

    def config(self, base: DetectorConfig) -> DetectorConfig:
        """``base`` with this spec's score type and refinement switches."""
        return base.replace(score_type=self.score_type, **VARIANTS[self.variant])


def score_specs(
    score_types: Iterable[str], variants: Iterable[str], have_sml_stats: bool = True
) -> list[ScoreSpec]:
    """All (score type × variant) specs, skipping ``sml`` when there are no statistics.

    :raises ConfigError: unknown names, or nothing left to evaluate.
    """
    specs = []
    for score_type in score_types:
        if score_type == "sml" and not have_sml_stats:
            LOGGER.warning("skipping score 'sml': the model has no SML statistics file")
            continue
        for variant in variants:
            spec = ScoreSpec(score_type, variant)
            spec.check()
            specs.append(spec)
    if not specs:
        raise ConfigError("no score to evaluate; choose score types the model supports")
    return specs


def compute_score_map(
    summary: LogitSummary,
    config: DetectorConfig,
    output_size: tuple[int, int],
    sml_stats: tuple[np.ndarray, np.ndarray] | None = None,
    pool: StripPool | None = None,
) -> np.ndarray:
    """The Detector's final score for ``config``, from an already computed summary.

    :param summary: the frame's logit summary (network input size).
    :param config: score type and refinement settings.
    :param output_size: (H, W) to resize to (the label / camera size).
    :param sml_stats: per-class (mean, std) of the max logit, for ``sml``.
    :param pool: threads for the refinement (the Detector's; same result without).
    :return: (H, W) float32, higher = more anomalous.
    """
    return anomaly_score(summary, config, output_size, sml_stats, pool)


def compute_score_maps(
    summary: LogitSummary,
    specs: Sequence[ScoreSpec],
    base: DetectorConfig,
    output_size: tuple[int, int],
    sml_stats: tuple[np.ndarray, np.ndarray] | None = None,
    pool: StripPool | None = None,
) -> dict[str, np.ndarray]:
    """:func:`compute_score_map` for every spec, keyed by :attr:`ScoreSpec.name`."""
    return {
        spec.name: compute_score_map(summary, spec.config(base), output_size, sml_stats, pool)
        for spec in specs
    }
