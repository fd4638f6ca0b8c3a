"""Mask-threshold calibration: the threshold that reaches a target TPR or FPR.

The node marks a pixel anomalous when ``score > threshold`` (strictly), so every threshold
here is in that convention and is exact for float32 scores: the achieved rates reported
are the rates of ``score > threshold`` on the calibration pixels.

* target TPR: the highest threshold whose TPR is at least the target (fewest false
  positives among those reaching it);
* target FPR: the lowest threshold whose FPR is at most the target (most anomalies found
  among those staying within it);
* best F1: the threshold of the highest pixel F1 (precision and recall balanced; on
  road scenes, where anomalies are about 1 % of the pixels, a 2 % FPR target still
  leaves most of the mask false).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from anomaly_seg_ros.errors import ConfigError, InputError
from anomaly_seg_ros.evaluation.operating_points import strict_threshold
from anomaly_seg_ros.evaluation.pixel_metrics import ExactPixelEvaluator

#: The parameters section the node reads for any node name.
PARAMS_NAMESPACE = "/**"


@dataclass(frozen=True)
class Calibration:
    """A calibrated threshold (``score > threshold`` is anomalous) and what it achieves."""

    score_type: str
    threshold: float
    target: str
    target_value: float
    tpr: float
    fpr: float
    num_positive: int
    num_negative: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _smallest_count_reaching(rate: float, total: int) -> int:
    """Smallest k with k / total >= rate (exact, no float fudge at the boundary)."""
    count = math.ceil(rate * total)
    while count > 0 and (count - 1) / total >= rate:
        count -= 1
    while count < total and count / total < rate:
        count += 1
    return count


def _largest_count_within(rate: float, total: int) -> int:
    """Largest k with k / total <= rate."""
    count = math.floor(rate * total)
    while count < total and (count + 1) / total <= rate:
        count += 1
    while count > 0 and count / total > rate:
        count -= 1
    return count


def _rates(positives: np.ndarray, negatives: np.ndarray, threshold: float) -> tuple[float, float]:
    """(TPR, FPR) of ``score > threshold`` on sorted positives and negatives."""
    value = np.asarray(threshold, dtype=positives.dtype)
    above_pos = len(positives) - int(np.searchsorted(positives, value, side="right"))
    above_neg = len(negatives) - int(np.searchsorted(negatives, value, side="right"))
    fpr = above_neg / len(negatives) if len(negatives) else float("nan")
    return above_pos / len(positives), fpr


def calibrate(
    evaluator: ExactPixelEvaluator,
    score_type: str,
    target_tpr: float | None = None,
    target_fpr: float | None = None,
    best_f1: bool = False,
) -> Calibration:
    """Threshold reaching ``target_tpr``, staying within ``target_fpr`` or of the best
    pixel F1 (``best_f1``); give exactly one.

    :param evaluator: an exact evaluator that has processed the validation frames.
    :param score_type: name of the score the evaluator saw (written to the result).
    :raises ConfigError: none or several targets, or a target out of range.
    :raises InputError: the validation frames have no anomalous or no normal pixels.
    """
    chosen = [target_tpr is not None, target_fpr is not None, bool(best_f1)]
    if sum(chosen) != 1:
        raise ConfigError("give exactly one of target_tpr, target_fpr and best_f1")
    if target_tpr is not None:
        target, value = "tpr", float(target_tpr)
    elif target_fpr is not None:
        target, value = "fpr", float(target_fpr)
    else:
        target, value = "f1", float("nan")
    in_range = 0.0 < value <= 1.0 if target == "tpr" else 0.0 <= value < 1.0
    if target != "f1" and not in_range:
        raise ConfigError(f"target {target} {value} out of range ((0, 1] for TPR, [0, 1) FPR)")
    positives, negatives = evaluator.sorted_scores()
    if len(positives) == 0 or len(negatives) == 0:
        raise InputError(
            f"calibration needs anomalous and in-distribution pixels; got {len(positives)} "
            f"and {len(negatives)}: use a validation set with labelled anomalies"
        )
    if target == "tpr":
        needed = _smallest_count_reaching(value, len(positives))
        # The needed-th largest positive must stay above the threshold.
        threshold = strict_threshold(float(positives[-needed]), positives.dtype)
    elif target == "f1":
        value, at = evaluator.operating_points().best_f1()
        threshold = strict_threshold(at, positives.dtype)
    else:
        allowed = _largest_count_within(value, len(negatives))
        # Everything above the (allowed+1)-th largest negative is within the budget.
        threshold = float(negatives[len(negatives) - allowed - 1])
    tpr, fpr = _rates(positives, negatives, threshold)
    return Calibration(
        score_type=score_type,
        threshold=threshold,
        target=target,
        target_value=float(value),
        tpr=tpr,
        fpr=fpr,
        num_positive=len(positives),
        num_negative=len(negatives),
    )


def write_params(
    path: str | Path,
    calibration: Calibration,
    base: str | Path | None = None,
    extra: dict[str, object] | None = None,
) -> Path:
    """Write ``threshold`` and ``score_type`` into a ROS 2 parameters YAML for the node.

    The values go under ``/**: ros__parameters`` (any node name). With ``base``, every
    other key of that file is kept (``base`` may be ``path`` itself to update in place).
    ``extra`` parameters (e.g. the refinement switches the score was measured with) are
    written beside them.

    :return: the written path.
    :raises ConfigError: ``base`` cannot be read or is not a parameters file.
    """
    import yaml

    from anomaly_seg_ros.config_files import read_yaml_mapping

    document = read_yaml_mapping(base, "ROS 2 parameters file") if base is not None else {}
    section = document.setdefault(PARAMS_NAMESPACE, {}) or {}
    document[PARAMS_NAMESPACE] = section
    parameters = section.setdefault("ros__parameters", {}) or {}
    section["ros__parameters"] = parameters
    parameters.update(extra or {})
    parameters["threshold"] = float(calibration.threshold)
    parameters["score_type"] = calibration.score_type
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    aim = (
        f"the best pixel F1 ({calibration.target_value:.4f})"
        if calibration.target == "f1"
        else f"target {calibration.target.upper()} {calibration.target_value}"
    )
    header = (
        f"# {calibration.score_type} threshold calibrated for {aim}: TPR {calibration.tpr:.4f}, "
        f"FPR {calibration.fpr:.6f} on {calibration.num_positive + calibration.num_negative} "
        "pixels; a pixel is anomalous when score > threshold\n"
    )
    path.write_text(header + yaml.safe_dump(document, sort_keys=False))
    return path
