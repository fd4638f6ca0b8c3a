"""Per-class max-logit statistics for Standardized Max Logits (JSON file).

Format::

    {"format": "anomaly_seg_ros/sml_stats", "version": 1,
     "class_names": [...], "mean": [...], "std": [...], "num_pixels": [...]}

The statistics are gathered per *predicted* class (Jung et al., ICCV 2021) by
:class:`MaxLogitStatistics`, which ``anomaly-seg calibrate-sml`` (any exported model, any
backend, frames without labels) and ``training/calibrate_sml.py`` (a torch checkpoint)
both use; the Detector reads the file for ``score_type: sml``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from anomaly_seg_ros.errors import ModelError

SML_FORMAT = "anomaly_seg_ros/sml_stats"
SML_VERSION = 1


def load_sml_stats(path: str | Path, class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read per-class mean and std of the max logit.

    :param path: the JSON file.
    :param class_names: the model's classes; the file must list the same, in order.
    :return: (mean, std), each (C,) float32; std > 0.
    :raises ModelError: missing file, wrong format, or classes that do not match the model.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ModelError(f"SML stats file {path} not found") from error
    except IsADirectoryError as error:
        raise ModelError(f"SML stats {path} is a directory, not a JSON file") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{path}: cannot read SML stats, not a JSON file ({error})") from error
    if not isinstance(data, dict):
        raise ModelError(
            f"{path}: not an SML stats file (a JSON {type(data).__name__}, expected an object "
            f"with format {SML_FORMAT!r}); recalibrate with anomaly-seg calibrate-sml"
        )
    if data.get("format") != SML_FORMAT or data.get("version") != SML_VERSION:
        raise ModelError(
            f"{path}: not an SML stats file (format {data.get('format')!r} "
            f"version {data.get('version')!r}, expected {SML_FORMAT!r} v{SML_VERSION})"
        )
    try:
        names = [str(name) for name in data.get("class_names", [])]
        mean = np.asarray(data["mean"], dtype=np.float32)
        std = np.asarray(data["std"], dtype=np.float32)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelError(f"{path}: malformed SML stats ({error!r}); recalibrate") from error
    if names != list(class_names):
        raise ModelError(
            f"{path}: SML stats are for {len(names)} classes {names[:3]}..., the model has "
            f"{len(class_names)} {list(class_names)[:3]}...; recalibrate for this model"
        )
    if mean.shape != (len(names),) or std.shape != (len(names),):
        raise ModelError(f"{path}: mean/std must have one entry per class ({len(names)})")
    if not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)) or not np.all(std > 0):
        raise ModelError(f"{path}: mean must be finite and std finite and > 0 for every class")
    return mean, std


class MaxLogitStatistics:
    """Running per-class count, sum and sum of squares of the max logit (float64).

    :param num_classes: number of classes.
    """

    def __init__(self, num_classes: int) -> None:
        self.count = np.zeros(num_classes, np.int64)
        self.total = np.zeros(num_classes, np.float64)
        self.total_sq = np.zeros(num_classes, np.float64)

    def add(self, max_logit: np.ndarray, predicted: np.ndarray) -> None:
        """Add pixels: their max logit and predicted class (argmax), arrays of one shape."""
        classes = len(self.count)
        predicted = np.asarray(predicted).ravel().astype(np.intp)
        values = np.asarray(max_logit, np.float64).ravel()
        self.count += np.bincount(predicted, minlength=classes)[:classes]
        self.total += np.bincount(predicted, values, minlength=classes)[:classes]
        self.total_sq += np.bincount(predicted, values * values, minlength=classes)[:classes]

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mean, std, count)``, (C,) each; mean 0 / std 1 for classes never predicted."""
        seen = self.count > 0
        mean = np.zeros_like(self.total)
        std = np.ones_like(self.total)
        mean[seen] = self.total[seen] / self.count[seen]
        variance = np.zeros_like(self.total)
        variance[seen] = self.total_sq[seen] / self.count[seen] - mean[seen] ** 2
        # A class seen on a handful of identical pixels has no spread; keep std usable.
        std[seen] = np.sqrt(np.maximum(variance[seen], 1e-12))
        std = np.maximum(std, 1e-6)
        return mean.astype(np.float32), std.astype(np.float32), self.count.copy()


def save_sml_stats(
    path: str | Path,
    class_names: Sequence[str],
    mean: np.ndarray,
    std: np.ndarray,
    num_pixels: np.ndarray | None = None,
) -> Path:
    """Write per-class statistics atomically (complete or not at all); classes never seen
    should carry mean 0, std 1."""
    from anomaly_seg_ros.atomic import atomic_write_json

    path = Path(path)
    counts = np.zeros(len(class_names), np.int64) if num_pixels is None else num_pixels
    data = {
        "format": SML_FORMAT,
        "version": SML_VERSION,
        "class_names": list(class_names),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "num_pixels": [int(v) for v in counts],
    }
    return atomic_write_json(path, data)
