"""Parity of a deployed backend (TensorRT, PyTorch CUDA) with the ONNX Runtime reference.

What matters on the car is whether the labels and the anomaly scores stay the same, so
the comparison is in those terms: the share of pixels whose label agrees, and percentiles
of the absolute error of each summary map and of each anomaly score. Errors are counted
in a fixed logarithmic histogram, so any number of full-size frames fits in a few KiB;
a percentile is reported as the upper edge of its bin (at most 12 % above the truth),
the maximum exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.model.summary import LogitSummary
from anomaly_seg_ros.pipeline.scores import compute_score
from anomaly_seg_ros.refinement_spec import SCORES_WITHOUT_STATISTICS

#: Float maps of the summary that are compared directly.
SUMMARY_MAPS = ("max_logit", "min_logit", "logsumexp", "entropy")
#: Scores compared by default (SML needs statistics and is a rescaled max logit).
DEFAULT_SCORES = SCORES_WITHOUT_STATISTICS
#: Reported percentiles of the absolute error.
PERCENTILES = (50.0, 99.0, 99.9)

_EDGES = np.logspace(-8, 4, 12 * 20 + 1)  # 20 bins per decade from 1e-8 to 1e4


@dataclass
class ErrorHistogram:
    """Streaming distribution of absolute errors (non-finite values counted apart)."""

    counts: np.ndarray = field(default_factory=lambda: np.zeros(len(_EDGES) + 1, np.int64))
    maximum: float = 0.0
    nonfinite: int = 0

    def add(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        error = np.abs(reference.astype(np.float64) - candidate.astype(np.float64)).ravel()
        finite = np.isfinite(error)
        self.nonfinite += int(error.size - np.count_nonzero(finite))
        error = error[finite]
        if error.size:
            # bin 0: below 1e-8 (exact agreement included); last bin: above 1e4
            self.counts += np.bincount(
                np.searchsorted(_EDGES, error, side="left"), minlength=len(self.counts)
            )
            self.maximum = max(self.maximum, float(error.max()))

    def percentile(self, percent: float) -> float:
        """Upper bound of the ``percent``-th percentile of the finite errors (0 if none)."""
        total = int(self.counts.sum())
        if total == 0:
            return 0.0
        index = int(np.searchsorted(np.cumsum(self.counts), percent / 100.0 * total))
        # bin i holds errors in (edge[i-1], edge[i]]; the last bin has no upper edge
        upper = float(_EDGES[index]) if index < len(_EDGES) else self.maximum
        return min(upper, self.maximum)


@dataclass(frozen=True)
class ParityReport:
    """Result of a comparison over ``frames`` frames.

    :param label_agreement: percent of pixels with the same label.
    :param errors: name → {``p50``, ``p99``, ``p99.9``, ``max``, ``nonfinite``}, for the
        summary maps and for the scores (prefixed ``score:``).
    """

    frames: int
    pixels: int
    label_agreement: float
    errors: dict[str, dict[str, float]]

    def lines(self) -> list[str]:
        """A readable table, one line per map or score."""
        text = [f"{self.frames} frame(s), label agreement {self.label_agreement:.4f} %"]
        header = "".join(f"{name:>11}" for name in ("p50", "p99", "p99.9", "max"))
        text.append(f"{'abs error':<22}{header}{'non-finite':>12}")
        for name, stats in self.errors.items():
            values = "".join(f"{stats[key]:>11.3g}" for key in ("p50", "p99", "p99.9", "max"))
            text.append(f"{name:<22}{values}{int(stats['nonfinite']):>12d}")
        return text


class ParityAccumulator:
    """Collects frame-by-frame differences between a reference and a candidate backend."""

    def __init__(self, scores: tuple[str, ...] = DEFAULT_SCORES) -> None:
        self.scores = scores
        self.frames = 0
        self.pixels = 0
        self.agreeing = 0
        names = [*SUMMARY_MAPS, *(f"score:{name}" for name in scores)]
        self.histograms = {name: ErrorHistogram() for name in names}

    def add(self, reference: LogitSummary, candidate: LogitSummary) -> None:
        """Compare one frame.

        :raises InputError: the two summaries have different shapes.
        """
        if reference.shape != candidate.shape:
            raise InputError(f"summary shapes differ: {reference.shape} vs {candidate.shape}")
        self.frames += 1
        self.pixels += reference.label.size
        self.agreeing += int(np.count_nonzero(reference.label == candidate.label))
        for name in SUMMARY_MAPS:
            self.histograms[name].add(getattr(reference, name), getattr(candidate, name))
        for name in self.scores:
            self.histograms[f"score:{name}"].add(
                compute_score(name, reference), compute_score(name, candidate)
            )

    def report(self) -> ParityReport:
        agreement = 100.0 * self.agreeing / self.pixels if self.pixels else 0.0
        errors = {
            name: {
                **{f"p{p:g}": histogram.percentile(p) for p in PERCENTILES},
                "max": histogram.maximum,
                "nonfinite": float(histogram.nonfinite),
            }
            for name, histogram in self.histograms.items()
        }
        return ParityReport(self.frames, self.pixels, agreement, errors)
