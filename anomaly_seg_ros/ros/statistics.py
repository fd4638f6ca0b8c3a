"""Counters and rolling latency percentiles of the node; plain Python, thread-safe.

The subscription callback, the inference worker and the diagnostics timer run in
different threads; one lock guards everything, and :meth:`FrameStatistics.snapshot`
returns an immutable copy that the diagnostics message is built from.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

#: Number of recent frames the latency percentiles are taken over.
WINDOW = 200
#: Seconds the output rate is measured over; no output for this long reads 0 Hz (stale).
RATE_WINDOW_SEC = 5.0


@dataclass(frozen=True)
class StatisticsSnapshot:
    """What the node reports in ``/diagnostics``.

    Every received frame ends in exactly one count: ``received == processed + dropped +
    skipped + malformed + failed`` (+ the at most two frames waiting or in flight).

    :param received: input messages received.
    :param processed: frames run through the Detector and published.
    :param dropped: frames overwritten in the mailbox before inference (newest wins).
    :param malformed: messages rejected during decoding (bad encoding, size, data...).
    :param failed: frames whose inference raised.
    :param output_rate: processed frames per second over the last
        :data:`RATE_WINDOW_SEC` seconds (0 when nothing was published in that time).
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
    skipped: int = 0
    """frames taken from the mailbox while nobody subscribed to any output (not decoded)."""
    input_age: float | None = None
    """seconds since the last frame was received; None before the first."""
    skip_age: float | None = None
    """seconds since the last frame was skipped for want of subscribers; None if never."""


class FrameStatistics:
    """Accumulates counts, per-stage timings and the last error."""

    def __init__(
        self,
        window: int = WINDOW,
        rate_window: float = RATE_WINDOW_SEC,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """:param window: frames the latency percentiles are taken over.
        :param rate_window: seconds the output rate is taken over.
        :param clock: seconds, monotonic (tests pass their own)."""
        self._lock = threading.Lock()
        self._window = window
        self._rate_window = rate_window
        self._clock = clock
        self._started = clock()
        self._stages: dict[str, deque[float]] = {}
        self._done_at: deque[float] = deque()
        self._received = self._processed = self._dropped = self._skipped = 0
        self._malformed = self._failed = 0
        self._last_error = ""
        self._received_at: float | None = None
        self._skipped_at: float | None = None

    def received(self) -> None:
        with self._lock:
            self._received += 1
            self._received_at = self._clock()

    def dropped(self, count: int = 1) -> None:
        with self._lock:
            self._dropped += count

    def skipped(self) -> None:
        """A frame nobody wanted (no output subscribed): neither decoded nor inferred."""
        with self._lock:
            self._skipped += 1
            self._skipped_at = self._clock()

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
            now = self._clock()
            self._done_at.append(now)
            self._forget_before(now - self._rate_window)
            for stage, seconds in timings.items():
                samples = self._stages.get(stage)
                if samples is None:
                    samples = self._stages[stage] = deque(maxlen=self._window)
                samples.append(seconds)

    def snapshot(self) -> StatisticsSnapshot:
        """A consistent, immutable copy of the current figures."""
        with self._lock:
            now = self._clock()
            self._forget_before(now - self._rate_window)
            # Over the window, or over the time since start while the window is not full
            # (at least 1 s, so that the first frame does not read as thousands of Hz).
            span = max(min(self._rate_window, now - self._started), 1.0)
            latency = {
                stage: _percentiles(samples) for stage, samples in self._stages.items() if samples
            }
            return StatisticsSnapshot(
                received=self._received,
                processed=self._processed,
                dropped=self._dropped,
                malformed=self._malformed,
                failed=self._failed,
                output_rate=len(self._done_at) / span,
                latency=latency,
                last_error=self._last_error,
                skipped=self._skipped,
                input_age=None if self._received_at is None else now - self._received_at,
                skip_age=None if self._skipped_at is None else now - self._skipped_at,
            )

    def _forget_before(self, oldest: float) -> None:
        while self._done_at and self._done_at[0] < oldest:
            self._done_at.popleft()


def _percentiles(samples: deque[float]) -> tuple[float, float]:
    p50, p95 = np.percentile(np.fromiter(samples, dtype=np.float64), [50, 95])
    return float(p50), float(p95)


class ProblemThrottle:
    """At most one log line per kind of problem per ``period`` seconds.

    rclpy's ``throttle_duration_sec`` throttles per call site, so one bad encoding would
    silence a different bad input (or a failing backend after it) for the whole period.
    Here the kind is the message with its numbers and quoted values blanked ("data has 10
    bytes" and "data has 12 bytes" are one kind, "unsupported image encoding 'x'" and
    "... 'y'" another), so a sender cycling through bad values cannot flood the log.
    """

    def __init__(self, period: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._period = period
        self._clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def kind(message: str) -> str:
        """The throttling key of ``message``."""
        # a quoted value, cut or not (:func:`~anomaly_seg_ros.errors.quoted`)
        quoted_value = r"(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")(?:\.\.\.)?"
        unquoted = re.sub(quoted_value, "'…'", message)
        return re.sub(r"\d+", "#", unquoted)[:200]

    def allow(self, message: str) -> bool:
        """True when ``message``'s kind was not logged in the last ``period`` seconds."""
        key, now = self.kind(message), self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._period:
                return False
            self._last[key] = now
            if len(self._last) > 256:  # kinds built from free text: keep the table small
                self._last = {k: t for k, t in self._last.items() if now - t < self._period}
            return True
