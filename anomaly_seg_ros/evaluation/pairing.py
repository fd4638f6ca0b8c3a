"""Pairing frames with ground truth by ``header.stamp``, whatever order either was recorded in.

The ground-truth side is indexed first: :class:`LabelIndex` holds every label's stamp and
where its pixels were put (a file on disk), not the pixels. The frames are then streamed
once, in any order, and each takes its label from the index. Memory is a few integers per
label, independent of image size and of how the bags were recorded (labels written in a
shuffled order, an input bag logged at header times and an output bag at replay time).
Unpaired frames and labels are reported, never silently dropped.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from typing import Generic, TypeVar

LOGGER = logging.getLogger(__name__)

Where = TypeVar("Where")


@dataclass
class LabelIndex(Generic[Where]):
    """Label stamps and where each label is stored; frames take their label by stamp.

    :param tolerance_ns: largest |Δstamp| that still pairs (0 = identical stamps only). A
        frame takes the nearest label not yet taken (greedy, in frame order); ties go to
        the earlier stamp.
    """

    tolerance_ns: int = 0
    stored: dict[int, Where] = field(default_factory=dict)
    duplicates: list[int] = field(default_factory=list)
    frames_without_label: list[int] = field(default_factory=list)
    _sorted: list[int] | None = None

    def add(self, stamp: int, where: Where) -> None:
        """Index one label; a second label with the same stamp replaces the first.

        :param stamp: the label's header stamp, ns.
        :param where: what :meth:`take` gives back for it (e.g. a file path).
        """
        if stamp in self.stored:
            LOGGER.warning("two ground-truth messages with stamp %d; keeping the later", stamp)
            self.duplicates.append(stamp)
        self.stored[stamp] = where
        self._sorted = None

    def take(self, stamp: int) -> tuple[int, Where] | None:
        """The label of the frame with this stamp, removed from the index.

        :param stamp: the frame's header stamp, ns.
        :return: (label stamp, where) or None (the frame is counted as without label).
        """
        label_stamp = self._nearest(stamp)
        if label_stamp is None:
            self.frames_without_label.append(stamp)
            return None
        return label_stamp, self.stored.pop(label_stamp)

    @property
    def labels_without_frame(self) -> list[int]:
        """Stamps of labels no frame took (so far), and of duplicates a later one replaced."""
        return sorted(self.duplicates + list(self.stored))

    def _nearest(self, stamp: int) -> int | None:
        if stamp in self.stored:
            return stamp
        if self.tolerance_ns <= 0 or not self.stored:
            return None
        if self._sorted is None:  # sorted once after indexing; taken stamps are skipped
            self._sorted = sorted(self.stored)
        stamps, position = self._sorted, bisect.bisect_left(self._sorted, stamp)
        best: int | None = None
        for step in (-1, 1):  # walk out of the window on each side, past taken labels
            index = position - 1 if step < 0 else position
            while 0 <= index < len(stamps) and abs(stamps[index] - stamp) <= self.tolerance_ns:
                if stamps[index] in self.stored:
                    if best is None or abs(stamps[index] - stamp) < abs(best - stamp):
                        best = stamps[index]
                    break
                index += step
        return best
