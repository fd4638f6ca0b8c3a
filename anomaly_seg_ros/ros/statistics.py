"""Counters and rolling latency percentiles of the node; plain Python, thread-safe.

The subscription callback, the inference worker and the diagnostics timer run in
different threads; one lock guards everything, and :meth:`FrameStatistics.snapshot`
returns an immutable copy that the diagnostics message is built from.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

#: Number of recent frames the latency percentiles and the output rate are taken over.
WINDOW = 200


@dataclass(frozen=True)
class StatisticsSnapshot:
    """What the node reports in ``/diagnostics``.

    :param received: input messages received.
    :param processed: frames run through the Detector and published.
    :param dropped: frames overwritten in the mailbox before inference (newest wins).
    :param malformed: messages rejected during decoding (bad encoding, size, data...).
    :param failed: frames whose inference raised.
    :param output_rate: processed frames per second over the recent window.
    :param latency: stage -> (p50, p95) in seconds over the recent window; ``total`` is
        the node's own time per frame (receipt to publication).
    :param last_error: the most recent problem, or empty.
    """

    received: int
    processed: int
    dropped: int
    malformed: int
    failed: int
    output_rate: float
    latency: dict[str, tuple[float, float]] = field(default_factory=dict)
    last_error: str = ""


class FrameStatistics:
    """Accumulates counts, per-stage timings and the last error."""

    def __init__(self, window: int = WINDOW) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._clock = time.monotonic
        self._stages: dict[str, deque[float]] = {}
        self._done_at: deque[float] = deque(maxlen=window)
        self._received = self._processed = self._dropped = 0
        self._malformed = self._failed = 0
        self._last_error = ""

    def received(self) -> None:
        with self._lock:
            self._received += 1

    def dropped(self, count: int = 1) -> None:
        with self._lock:
            self._dropped += count

    def malformed(self, reason: str) -> None:
        with self._lock:
            self._malformed += 1
            self._last_error = f"malformed input: {reason}"

    def failed(self, reason: str) -> None:
        with self._lock:
            self._failed += 1
            self._last_error = f"inference failed: {reason}"

    def processed(self, timings: dict[str, float]) -> None:
        """Record one published frame with its seconds per stage."""
        with self._lock:
            self._processed += 1
            self._done_at.append(self._clock())
            for stage, seconds in timings.items():
                samples = self._stages.get(stage)
                if samples is None:
                    samples = self._stages[stage] = deque(maxlen=self._window)
                samples.append(seconds)

    def snapshot(self) -> StatisticsSnapshot:
        """A consistent, immutable copy of the current figures."""
        with self._lock:
            latency = {
                stage: _percentiles(samples) for stage, samples in self._stages.items() if samples
            }
            return StatisticsSnapshot(
                received=self._received,
                processed=self._processed,
                dropped=self._dropped,
                malformed=self._malformed,
                failed=self._failed,
                output_rate=_rate(self._done_at, self._clock()),
                latency=latency,
                last_error=self._last_error,
            )


def _percentiles(samples: deque[float]) -> tuple[float, float]:
    p50, p95 = np.percentile(np.fromiter(samples, dtype=np.float64), [50, 95])
    return float(p50), float(p95)


def _rate(done_at: deque[float], now: float) -> float:
    """Frames per second over the window, 0 when the last frame is older than 5 s."""
    if len(done_at) < 2 or now - done_at[-1] > 5.0:
        return 0.0
    span = done_at[-1] - done_at[0]
    return (len(done_at) - 1) / span if span > 0 else 0.0
