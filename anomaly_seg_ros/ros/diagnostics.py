"""``/diagnostics`` messages from the node's statistics (plain functions, tested directly)."""

from __future__ import annotations

from dataclasses import dataclass

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from anomaly_seg_ros.ros.statistics import RATE_WINDOW_SEC, StatisticsSnapshot

# The status levels, typed (the generated message package has no type information).
OK: bytes = DiagnosticStatus.OK
WARN: bytes = DiagnosticStatus.WARN
ERROR: bytes = DiagnosticStatus.ERROR


@dataclass(frozen=True)
class DetectorDescription:
    """What does not change while the node runs.

    :param name: diagnostic status name, e.g. ``anomaly_seg: detector``.
    :param backend: the backend's own description (provider, precision).
    :param model: model file path.
    :param input_size: network (height, width).
    """

    name: str
    backend: str
    model: str
    input_size: tuple[int, int]


def status_level(previous: StatisticsSnapshot | None, current: StatisticsSnapshot) -> bytes:
    """ERROR when frames failed since ``previous`` and none was published; WARN when frames
    were malformed or failed since ``previous``, or when nothing was published for the
    rate window (stale: no input, or nobody subscribes); OK otherwise."""
    before_failed = previous.failed if previous else 0
    before_malformed = previous.malformed if previous else 0
    before_processed = previous.processed if previous else 0
    new_failures = current.failed - before_failed
    if new_failures and current.processed == before_processed:
        return ERROR
    if new_failures or current.malformed > before_malformed or current.output_rate == 0:
        return WARN
    return OK


def status_message(
    level: bytes, previous: StatisticsSnapshot | None, current: StatisticsSnapshot
) -> str:
    """The one-line summary of a status (what an operator reads in rqt_robot_monitor)."""
    if level == ERROR:
        return f"inference failing: {current.last_error}"
    if current.failed > (previous.failed if previous else 0) or current.malformed > (
        previous.malformed if previous else 0
    ):
        return f"some input rejected or failed: {current.last_error}"
    if level == WARN:
        # Over the output rate's window, not since the last report: frames arriving every
        # few seconds, all skipped, are "nobody subscribes", not "no input".
        if current.skip_age is not None and current.skip_age <= RATE_WINDOW_SEC:
            return "stale: no output at 0.0 Hz, nobody subscribes to the outputs"
        if current.input_age is None or current.input_age > RATE_WINDOW_SEC:
            return "stale: no output at 0.0 Hz, no input frames arriving"
        return "stale: no output at 0.0 Hz"
    return f"running at {current.output_rate:.1f} Hz"


def diagnostic_status(
    description: DetectorDescription,
    current: StatisticsSnapshot,
    previous: StatisticsSnapshot | None = None,
    score_type: str = "",
) -> DiagnosticStatus:
    """One DiagnosticStatus with the figures as key/value pairs.

    :param description: the node's fixed facts.
    :param current: statistics now.
    :param previous: statistics at the previous report (decides the level), or None.
    :param score_type: the anomaly score in use.
    :return: keys ``backend``, ``model``, ``input_size``, ``score_type``, counters,
        ``output_rate_hz``, ``latency_<stage>_p50_ms``/``_p95_ms``, ``last_error``.
    """
    level = status_level(previous, current)
    message = status_message(level, previous, current)
    pairs = {
        "backend": description.backend,
        "model": description.model,
        "input_size": f"{description.input_size[0]}x{description.input_size[1]}",
        "score_type": score_type,
        "frames_received": str(current.received),
        "frames_processed": str(current.processed),
        "frames_dropped": str(current.dropped),
        "frames_skipped_no_subscribers": str(current.skipped),
        "frames_malformed": str(current.malformed),
        "frames_failed": str(current.failed),
        "output_rate_hz": f"{current.output_rate:.2f}",
    }
    for stage, (p50, p95) in current.latency.items():
        pairs[f"latency_{stage}_p50_ms"] = f"{p50 * 1e3:.2f}"
        pairs[f"latency_{stage}_p95_ms"] = f"{p95 * 1e3:.2f}"
    pairs["last_error"] = current.last_error
    return DiagnosticStatus(
        level=level,
        name=description.name,
        message=message,
        hardware_id=description.backend,
        values=[KeyValue(key=key, value=value) for key, value in pairs.items()],
    )


def inactive_status(
    description: DetectorDescription, current: StatisticsSnapshot, state: str
) -> DiagnosticStatus:
    """The status of a managed node that is configured but not active: WARN, since it
    detects nothing, and saying why (not a fault: the lifecycle manager decides).

    :param state: the lifecycle state's label, e.g. ``inactive``.
    """
    status = diagnostic_status(description, current)
    status.level = WARN
    status.message = f"{state} (lifecycle): camera not subscribed, nothing detected"
    return status


def diagnostic_array(status: DiagnosticStatus, stamp: Time) -> DiagnosticArray:
    """Wrap one status in the array ``/diagnostics`` carries."""
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [status]
    return array


def status_values(status: DiagnosticStatus) -> dict[str, str]:
    """The key/value pairs of a status as a dict (for tests and tools)."""
    return {pair.key: pair.value for pair in status.values}
