"""The worker mailbox, the statistics and the diagnostics message, without DDS."""

from __future__ import annotations

import threading
import time

import pytest
from diagnostic_msgs.msg import DiagnosticStatus

from anomaly_seg_ros.ros.diagnostics import (
    DetectorDescription,
    diagnostic_status,
    status_values,
)
from anomaly_seg_ros.ros.mailbox import LatestMailbox, MailboxClosedError
from anomaly_seg_ros.ros.statistics import FrameStatistics


def test_mailbox_keeps_only_the_newest_item() -> None:
    mailbox: LatestMailbox[int] = LatestMailbox()
    assert mailbox.put(1) is False
    assert mailbox.put(2) is True  # 1 was never taken: dropped
    assert mailbox.put(3) is True
    assert mailbox.take(timeout=0) == 3
    assert mailbox.take(timeout=0.01) is None
    assert mailbox.dropped == 2


def test_mailbox_close_wakes_a_waiting_worker() -> None:
    mailbox: LatestMailbox[int] = LatestMailbox()
    outcome: list[str] = []

    def worker() -> None:
        try:
            mailbox.take()
        except MailboxClosedError:
            outcome.append("closed")

    thread = threading.Thread(target=worker)
    thread.start()
    time.sleep(0.05)
    mailbox.close()
    thread.join(timeout=2)
    assert outcome == ["closed"]
    with pytest.raises(MailboxClosedError):
        mailbox.take()


def test_statistics_percentiles_counts_and_rate() -> None:
    statistics = FrameStatistics(window=10)
    for milliseconds in range(1, 21):  # only the last 10 (11..20 ms) stay in the window
        statistics.received()
        statistics.processed({"inference": milliseconds / 1e3})
        time.sleep(0.002)
    statistics.dropped(3)
    statistics.malformed("bad encoding")
    snapshot = statistics.snapshot()
    p50, p95 = snapshot.latency["inference"]
    assert p50 == pytest.approx(0.0155) and p95 == pytest.approx(0.01955)
    assert (snapshot.received, snapshot.processed, snapshot.dropped) == (20, 20, 3)
    assert snapshot.malformed == 1 and "bad encoding" in snapshot.last_error
    assert 50 < snapshot.output_rate < 600


def test_diagnostic_status_levels_and_keys() -> None:
    description = DetectorDescription("/anomaly_seg: detector", "ort", "m.onnx", (64, 128))
    statistics = FrameStatistics()
    statistics.processed({"inference": 0.01})
    healthy = statistics.snapshot()
    status = diagnostic_status(description, healthy, None, score_type="sml")
    values = status_values(status)
    assert status.level == DiagnosticStatus.OK
    assert values["input_size"] == "64x128" and values["score_type"] == "sml"
    assert values["latency_inference_p50_ms"] == "10.00"
    statistics.malformed("zero-size image")
    assert diagnostic_status(description, statistics.snapshot(), healthy).level == (
        DiagnosticStatus.WARN
    )
    statistics.failed("RuntimeError: boom")
    failing = diagnostic_status(description, statistics.snapshot(), healthy)
    assert failing.level == DiagnosticStatus.ERROR
    assert "boom" in status_values(failing)["last_error"]
