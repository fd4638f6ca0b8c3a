"""How a dataset is evaluated: its layout, which frames count, and at which size.

Published tables differ in two choices besides the dataset itself:

* **Frames without an anomaly pixel.** The Fishyscapes and Segment-Me-If-You-Can
  evaluation scripts (and the many that copy them) skip frames whose label holds no
  anomaly pixel; pixel AP, AUROC and FPR95 then count only the pixels of frames with
  anomalies. ``skip_frames_without_anomaly`` does the same.
* **Evaluation size.** ``label``: the score is resized (bilinear) to the label's size,
  as the node publishes it at camera size. ``network``: the label is resized by nearest
  neighbour to the network input size and the score is taken there, unresized (how many
  published tables are made). The nearest-neighbour convention is PIL's / torchvision's
  (the source pixel under the target pixel's centre, ``cv2.INTER_NEAREST_EXACT``), not
  OpenCV's ``INTER_NEAREST`` (which picks the top-left neighbour and would shift labels
  by up to a pixel against those tables).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from anomaly_seg_ros.errors import ConfigError

#: ``--eval-size`` choices.
EVAL_SIZES = ("label", "network")


@dataclass(frozen=True)
class EvaluationProtocol:
    """The protocol of one evaluation; :meth:`to_dict` goes into the report.

    :param layout: the dataset layout read (``processed``, ``smiyc``, ...).
    :param skip_frames_without_anomaly: leave out frames whose label has no 1.
    :param eval_size: ``label`` or ``network`` (see the module text).
    """

    layout: str
    skip_frames_without_anomaly: bool = False
    eval_size: str = "label"

    def __post_init__(self) -> None:
        if self.eval_size not in EVAL_SIZES:
            raise ConfigError(
                f"unknown eval size {self.eval_size!r}; valid: {', '.join(EVAL_SIZES)}"
            )

    def to_dict(self) -> dict[str, object]:
        """Plain data for ``results.json``."""
        return {
            "layout": self.layout,
            "skip_frames_without_anomaly": self.skip_frames_without_anomaly,
            "eval_size": self.eval_size,
        }


def resize_label_nearest(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) uint8 label → (H, W) by nearest neighbour in PIL's convention.

    :param size: (H, W).
    """
    if label.shape[:2] == tuple(size):
        return label
    return cv2.resize(label, (size[1], size[0]), interpolation=cv2.INTER_NEAREST_EXACT)


def has_anomaly(label: np.ndarray) -> bool:
    """Whether the 0/1/255 label holds at least one anomaly pixel."""
    return bool(np.any(label == 1))


def protocol_line(settings: dict[str, object]) -> str | None:
    """One Markdown line saying how the frames were evaluated, from a report's settings.

    :return: None when the settings record no protocol (e.g. a bag evaluation).
    """
    protocol = settings.get("protocol")
    if not isinstance(protocol, dict):
        return None
    skipped = settings.get("frames_skipped_without_anomaly", [])
    count = len(skipped) if isinstance(skipped, list) else 0
    frames = (
        f"frames without an anomaly pixel skipped ({count} skipped)"
        if protocol["skip_frames_without_anomaly"]
        else "every labelled frame counted, with or without anomaly"
    )
    if protocol["eval_size"] == "network":
        size = settings.get("network_size")
        at = f" {size[0]}×{size[1]}" if isinstance(size, (list, tuple)) else ""
        where = f"scored at network size{at}, labels resized by nearest neighbour (PIL convention)"
    else:
        where = "scored at label size, scores resized bilinearly to each label"
    held_out = settings.get("held_out_without_label", 0)
    extra = f"; {held_out} unlabelled images (held-out test split) left out" if held_out else ""
    return f"protocol: layout `{protocol['layout']}`; {frames}; {where}{extra}"
