"""Per-pixel OoD scores from the logit summary; higher = more anomalous, always.

Every score is an elementwise formula over the five summary maps the graph emits (see
:class:`~anomaly_seg_ros.model.summary.LogitSummary`), so switching scores at run time needs no
new engine. The formulas are written once, in
:data:`anomaly_seg_ros.refinement_spec.SCORE_FORMULAS` (the graph's refinement runs the
same functions on torch tensors); for logits ``l_c`` of C classes:

* ``msp``: 1 − max_c softmax(l)_c = 1 − exp(max l − logsumexp l) (Hendrycks & Gimpel)
* ``max_logit``: −max_c l_c (Hendrycks et al., "Scaling OoD detection")
* ``entropy``: −Σ_c p_c log p_c, p = softmax(l)
* ``energy``: −T·logsumexp(l / T) with T = 1 (Liu et al. 2020), i.e. −logsumexp l
* ``max_min_logit``: −(max_c l_c − min_c l_c), the spread of the logits
* ``sml``: −(max l − μ_ĉ) / σ_ĉ with ĉ the predicted class and μ, σ the per-class mean and
  standard deviation of the max logit measured on training images (Jung et al. 2021)
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from anomaly_seg_ros.errors import ConfigError, ModelError
from anomaly_seg_ros.model.summary import LogitSummary
from anomaly_seg_ros.refinement_spec import SCORE_FORMULAS, SCORE_TYPES

__all__ = ["SCORE_TYPES", "compute_score", "max_softmax", "standardized_max_logit"]


def max_softmax(summary: LogitSummary) -> np.ndarray:
    """(H, W) float32 max softmax probability, in (0, 1]."""
    return np.exp(summary.max_logit - summary.logsumexp)


def _class_table(summary: LogitSummary, values: np.ndarray, fill: float) -> np.ndarray:
    """(H, W) float32 ``values[label]``: a 256-entry lookup table through cv2.LUT, several
    times faster than numpy fancy indexing on a uint8 map."""
    table = np.full((1, 256), fill, np.float32)
    table[0, : len(values)] = values
    return cv2.LUT(summary.label, table)


class _HostMaps:
    """The summary as :class:`~anomaly_seg_ros.refinement_spec.ScoreMaps` for numpy."""

    def __init__(
        self,
        summary: LogitSummary,
        class_mean: np.ndarray | None = None,
        class_std: np.ndarray | None = None,
    ) -> None:
        self.summary = summary
        self.max_logit = summary.max_logit
        self.min_logit = summary.min_logit
        self.logsumexp = summary.logsumexp
        self.entropy = summary.entropy
        self.mean = class_mean
        self.std = class_std

    def exp(self, values: Any) -> Any:
        return np.exp(values)

    def class_mean(self) -> np.ndarray:
        return _class_table(self.summary, self._statistics()[0], 0.0)

    def class_inverse_std(self) -> np.ndarray:
        inverse_std = 1.0 / np.asarray(self._statistics()[1], np.float32)
        return _class_table(self.summary, inverse_std, 1.0)

    def _statistics(self) -> tuple[np.ndarray, np.ndarray]:
        if self.mean is None or self.std is None:
            raise ModelError(
                "score 'sml' needs per-class max-logit statistics: pass an SML stats file "
                "(written by anomaly-seg calibrate-sml) or choose another score"
            )
        return self.mean, self.std


def standardized_max_logit(
    summary: LogitSummary, class_mean: np.ndarray, class_std: np.ndarray
) -> np.ndarray:
    """(H, W) float32 SML = (max logit − μ_ĉ) / σ_ĉ (higher = more in-distribution).

    :param class_mean: (C,) float32 per-class mean of the max logit.
    :param class_std: (C,) float32 per-class standard deviation (> 0).
    """
    score: np.ndarray = -SCORE_FORMULAS["sml"](_HostMaps(summary, class_mean, class_std))
    return score


def compute_score(
    name: str,
    summary: LogitSummary,
    sml_mean: np.ndarray | None = None,
    sml_std: np.ndarray | None = None,
) -> np.ndarray:
    """The anomaly score ``name`` for every pixel.

    :param name: one of :data:`SCORE_TYPES`.
    :param summary: the logit summary of one frame.
    :param sml_mean: (C,) per-class max-logit mean; required for ``sml``.
    :param sml_std: (C,) per-class max-logit standard deviation; required for ``sml``.
    :return: (H, W) float32, higher = more anomalous; a new array.
    :raises ConfigError: unknown score name.
    :raises ModelError: ``sml`` without statistics.
    """
    formula = SCORE_FORMULAS.get(name)
    if formula is None:
        raise ConfigError(f"unknown score {name!r}; valid: {', '.join(SCORE_TYPES)}")
    score = formula(_HostMaps(summary, sml_mean, sml_std))
    if score is summary.entropy:  # a summary map itself: the caller gets its own array
        return np.array(score, dtype=np.float32)
    return np.asarray(score, dtype=np.float32)
