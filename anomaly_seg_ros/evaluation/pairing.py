"""Pairing frames with ground truth by ``header.stamp``.

:class:`StampMatcher` pairs each frame with the label of the
same stamp (or the nearest within a tolerance), keeping at most ``max_pending`` unmatched
items of each kind so that memory stays bounded on long bags. Unpaired frames and labels
are reported, never silently dropped.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LOGGER = logging.getLogger(__name__)


@dataclass
class StampMatcher:
    """Pairs frames and labels by stamp; unpaired ones are counted and their stamps kept.

    :param tolerance_ns: largest |Δstamp| that still pairs (0 = identical stamps); pairing
        is greedy: an arriving item takes the nearest pending item of the other kind.
    :param max_pending: unpaired items kept per kind before the oldest is given up.
    """

    tolerance_ns: int = 0
    max_pending: int = 64
    frames: OrderedDict[int, Any] = field(default_factory=OrderedDict)
    labels: OrderedDict[int, np.ndarray] = field(default_factory=OrderedDict)
    frames_without_label: list[int] = field(default_factory=list)
    labels_without_frame: list[int] = field(default_factory=list)

    def add_frame(self, stamp: int, frame: Any) -> tuple[int, Any, np.ndarray] | None:
        """Offer a frame; returns (stamp, frame, label) when a label pairs with it."""
        label_stamp = self._nearest(self.labels, stamp)
        if label_stamp is None:
            self._park(self.frames, stamp, frame, self.frames_without_label)
            return None
        return stamp, frame, self.labels.pop(label_stamp)

    def add_label(self, stamp: int, label: np.ndarray) -> tuple[int, Any, np.ndarray] | None:
        """Offer a label; returns (frame stamp, frame, label) when a frame pairs with it."""
        frame_stamp = self._nearest(self.frames, stamp)
        if frame_stamp is None:
            self._park(self.labels, stamp, label, self.labels_without_frame)
            return None
        return frame_stamp, self.frames.pop(frame_stamp), label

    def finish(self) -> None:
        """Give up every pending item (end of bag)."""
        self.frames_without_label.extend(self.frames)
        self.labels_without_frame.extend(self.labels)
        self.frames.clear()
        self.labels.clear()

    def _nearest(self, pending: OrderedDict[int, Any], stamp: int) -> int | None:
        if stamp in pending:
            return stamp
        if self.tolerance_ns <= 0 or not pending:
            return None
        best = min(pending, key=lambda other: abs(other - stamp))
        return best if abs(best - stamp) <= self.tolerance_ns else None

    def _park(
        self, pending: OrderedDict[int, Any], stamp: int, item: Any, given_up: list[int]
    ) -> None:
        if stamp in pending:
            LOGGER.warning("two messages with stamp %d on one topic; keeping the later", stamp)
            given_up.append(stamp)
        pending[stamp] = item
        while len(pending) > self.max_pending:
            given_up.append(pending.popitem(last=False)[0])
