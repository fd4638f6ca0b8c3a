"""Per-pixel OoD scores from the logit summary; higher = more anomalous, always.

Every score is an elementwise formula over the five summary maps the graph emits (see
:class:`~anomaly_seg_ros.backends.base.LogitSummary`), so switching scores at run time
needs no new engine. Formulas, for logits ``l_c`` of C classes:

* ``msp``: 1 − max_c softmax(l)_c = 1 − exp(max l − logsumexp l) (Hendrycks & Gimpel)
* ``max_logit``: −max_c l_c (Hendrycks et al., "Scaling OoD detection")
* ``entropy``: −Σ_c p_c log p_c, p = softmax(l)
* ``energy``: −T·logsumexp(l / T) with T = 1 (Liu et al. 2020), i.e. −logsumexp l
* ``max_min_logit``: −(max_c l_c − min_c l_c), the spread of the logits
* ``sml``: −(max l − μ_ĉ) / σ_ĉ with ĉ the predicted class and μ, σ the per-class mean and
  standard deviation of the max logit measured on training images (Jung et al. 2021)
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from anomaly_seg_ros.config import SCORE_TYPES
from anomaly_seg_ros.errors import ConfigError, ModelError
from anomaly_seg_ros.summary import LogitSummary

__all__ = ["SCORE_TYPES", "compute_score", "max_softmax", "standardized_max_logit"]


def max_softmax(summary: LogitSummary) -> np.ndarray:
    """(H, W) float32 max softmax probability, in (0, 1]."""
    return np.exp(summary.max_logit - summary.logsumexp)


def standardized_max_logit(
    summary: LogitSummary, class_mean: np.ndarray, class_std: np.ndarray
) -> np.ndarray:
    """(H, W) float32 SML = (max logit − μ_ĉ) / σ_ĉ (higher = more in-distribution).

    :param class_mean: (C,) float32 per-class mean of the max logit.
    :param class_std: (C,) float32 per-class standard deviation (> 0).
    """
    # A 256-entry lookup table per statistic turns the per-pixel gather into cv2.LUT,
    # several times faster than numpy fancy indexing on a uint8 map.
    mean_table = np.zeros((1, 256), np.float32)
    inverse_std_table = np.ones((1, 256), np.float32)
    mean_table[0, : len(class_mean)] = class_mean
    inverse_std_table[0, : len(class_std)] = 1.0 / np.asarray(class_std, np.float32)
    sml = cv2.LUT(summary.label, mean_table)
    np.subtract(summary.max_logit, sml, out=sml)
    np.multiply(sml, cv2.LUT(summary.label, inverse_std_table), out=sml)
    return sml


def _msp(summary: LogitSummary) -> np.ndarray:
    return 1.0 - max_softmax(summary)


def _max_logit(summary: LogitSummary) -> np.ndarray:
    return -summary.max_logit


def _entropy(summary: LogitSummary) -> np.ndarray:
    return summary.entropy.copy()


def _energy(summary: LogitSummary) -> np.ndarray:
    return -summary.logsumexp


def _max_min_logit(summary: LogitSummary) -> np.ndarray:
    return summary.min_logit - summary.max_logit


_FORMULAS: dict[str, Callable[[LogitSummary], np.ndarray]] = {
    "msp": _msp,
    "max_logit": _max_logit,
    "entropy": _entropy,
    "energy": _energy,
    "max_min_logit": _max_min_logit,
}


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
    :return: (H, W) float32, higher = more anomalous.
    :raises ConfigError: unknown score name.
    :raises ModelError: ``sml`` without statistics.
    """
    if name == "sml":
        if sml_mean is None or sml_std is None:
            raise ModelError(
                "score 'sml' needs per-class max-logit statistics: pass an SML stats file "
                "(written by training/calibrate_sml.py) or choose another score"
            )
        return -standardized_max_logit(summary, sml_mean, sml_std)
    formula = _FORMULAS.get(name)
    if formula is None:
        raise ConfigError(f"unknown score {name!r}; valid: {', '.join(SCORE_TYPES)}")
    return formula(summary).astype(np.float32, copy=False)
