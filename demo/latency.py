"""Latency and frame rate of a replay: per frame from the send and arrival times, per
stage from the node's own ``/diagnostics`` (p50/p95 over its recent window)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anomaly_seg_ros.io.bags import open_bag

DIAGNOSTICS_TOPIC = "/diagnostics"


@dataclass(frozen=True)
class LatencySummary:
    """Timing figures of one replay.

    :param round_trip_ms: per frame, publish -> last output arrived, in drive order.
    :param frames_per_second: frames / (last arrival - first publish).
    :param wall_seconds: first publish -> last arrival.
    :param stages_ms: node stage -> {"p50": ms, "p95": ms} from its last diagnostics.
    :param node: the node's other diagnostics (backend, counters, output rate...).
    """

    round_trip_ms: list[float]
    frames_per_second: float
    wall_seconds: float
    stages_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    node: dict[str, str] = field(default_factory=dict)

    def percentiles(self) -> dict[str, float]:
        """p50, p95, max and mean of the round trip, ms (NaN without frames)."""
        if not self.round_trip_ms:
            return {key: float("nan") for key in ("p50", "p95", "max", "mean")}
        values = np.asarray(self.round_trip_ms)
        return {
            "p50": float(np.percentile(values, 50)),
            "p95": float(np.percentile(values, 95)),
            "max": float(values.max()),
            "mean": float(values.mean()),
        }


def summarize_latency(
    sent_ns: dict[int, int],
    arrivals: dict[str, dict[int, int]],
    diagnostics: Sequence[dict[str, str]],
) -> LatencySummary:
    """Figures from a replay's send/arrival times and the node's diagnostics statuses.

    :param sent_ns: header stamp -> publish time (ns).
    :param arrivals: output topic -> header stamp -> arrival time (ns).
    :param diagnostics: the node's statuses (key -> value) in arrival order; the one that
        counts the most processed frames gives the stage latencies.
    """
    round_trip = []
    last_arrival = 0
    for stamp in sorted(sent_ns):
        times = [topic[stamp] for topic in arrivals.values() if stamp in topic]
        if len(times) == len(arrivals) and times:
            round_trip.append((max(times) - sent_ns[stamp]) / 1e6)
            last_arrival = max(last_arrival, max(times))
    wall = (last_arrival - min(sent_ns.values())) / 1e9 if round_trip else 0.0
    stages: dict[str, dict[str, float]] = {}
    node: dict[str, str] = {}
    if diagnostics:
        final = max(diagnostics, key=lambda status: int(status.get("frames_processed", 0)))
        for key, value in final.items():
            if key.startswith("latency_") and key.endswith(("_p50_ms", "_p95_ms")):
                stage, percentile = key[len("latency_") : -len("_ms")].rsplit("_", 1)
                stages.setdefault(stage, {})[percentile] = float(value)
            else:
                node[key] = value
    return LatencySummary(
        round_trip_ms=round_trip,
        frames_per_second=len(round_trip) / wall if wall > 0 else float("nan"),
        wall_seconds=wall,
        stages_ms=stages,
        node=node,
    )


def recorded_diagnostics(output_bag: str, status_prefix: str) -> list[dict[str, str]]:
    """The diagnostics statuses (key -> value) recorded in ``output_bag`` whose name starts
    with ``status_prefix`` (the node's: ``<fully qualified node name>: detector``)."""
    statuses = []
    with open_bag(output_bag) as reader:
        chosen = [c for c in reader.connections if c.topic == DIAGNOSTICS_TOPIC]
        for connection, _, raw in reader.messages(connections=chosen):
            array: Any = reader.deserialize(raw, connection.msgtype)
            for status in array.status:
                if status.name.startswith(status_prefix):
                    statuses.append({pair.key: pair.value for pair in status.values})
    return statuses
