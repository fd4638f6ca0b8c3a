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
from anomaly_seg_ros.ros.statistics import FrameStatistics, ProblemThrottle


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


class FakeClock:
    """Seconds that advance only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_statistics_percentiles_counts_and_rate() -> None:
    clock = FakeClock()
    statistics = FrameStatistics(window=10, rate_window=2.0, clock=clock)
    clock.now += 10.0
    for milliseconds in range(1, 21):  # only the last 10 (11..20 ms) stay in the window
        statistics.received()
        statistics.processed({"inference": milliseconds / 1e3})
        clock.now += 0.1  # 10 Hz
    statistics.dropped(3)
    statistics.malformed("bad encoding")
    statistics.skipped()
    snapshot = statistics.snapshot()
    p50, p95 = snapshot.latency["inference"]
    assert p50 == pytest.approx(0.0155) and p95 == pytest.approx(0.01955)
    assert (snapshot.received, snapshot.processed, snapshot.dropped) == (20, 20, 3)
    assert snapshot.malformed == 1 and "bad encoding" in snapshot.last_error
    assert snapshot.skipped == 1
    assert snapshot.output_rate == pytest.approx(10.0)


def test_output_rate_is_taken_over_time_not_over_frames() -> None:
    clock = FakeClock()
    statistics = FrameStatistics(clock=clock)
    clock.now += 60.0
    for _ in range(300):  # 30 s at 10 Hz: more frames than the latency window
        statistics.processed({"total": 0.01})
        clock.now += 0.1
    assert statistics.snapshot().output_rate == pytest.approx(10.0)
    clock.now += 30.0  # a pause, then 10 Hz again for 2 s
    for _ in range(20):
        statistics.processed({"total": 0.01})
        clock.now += 0.1
    assert statistics.snapshot().output_rate == pytest.approx(20 / 5.0)  # 2 s of 5 s
    clock.now += 3.0
    assert statistics.snapshot().output_rate == pytest.approx(10.0 * 2 / 5)
    clock.now += 5.0
    assert statistics.snapshot().output_rate == 0.0


def test_problem_throttle_is_per_kind_of_problem() -> None:
    clock = FakeClock()
    throttle = ProblemThrottle(5.0, clock)
    assert throttle.allow("data has 10 bytes, needs 30")
    assert not throttle.allow("data has 12 bytes, needs 40")  # same kind, within 5 s
    assert throttle.allow("unknown encoding 'xyz'")  # another kind is still logged
    assert throttle.allow("RuntimeError: boom")
    clock.now += 5.0
    assert throttle.allow("data has 12 bytes, needs 40")


def test_sparse_skipped_frames_are_not_reported_as_no_input() -> None:
    clock = FakeClock()
    description = DetectorDescription("/anomaly_seg: detector", "ort", "m.onnx", (64, 128))
    statistics = FrameStatistics(clock=clock)
    previous = statistics.snapshot()
    messages = []
    for second in range(1, 13):  # a frame every 3 s, nobody subscribed; a report per second
        clock.now += 1.0
        if second % 3 == 0:
            statistics.received()
            statistics.skipped()
        current = statistics.snapshot()
        messages.append(diagnostic_status(description, current, previous).message)
        previous = current
    assert all("nobody subscribes" in message for message in messages[2:]), messages
    clock.now += 10.0  # then the camera stops
    assert (
        "no input frames arriving" in diagnostic_status(description, statistics.snapshot()).message
    )


def test_inactive_status_says_so() -> None:
    from anomaly_seg_ros.ros.diagnostics import inactive_status

    description = DetectorDescription("/anomaly_seg: detector", "ort", "m.onnx", (64, 128))
    status = inactive_status(description, FrameStatistics().snapshot(), "inactive")
    assert status.level == DiagnosticStatus.WARN and status.message.startswith("inactive")
    assert status_values(status)["model"] == "m.onnx"


def test_distinct_bad_encodings_are_one_kind_and_short_lines() -> None:
    from anomaly_seg_ros.errors import InputError
    from anomaly_seg_ros.io.image import RawImage, image_to_rgb

    throttle = ProblemThrottle(5.0, FakeClock())
    messages = []
    for index in range(200):  # a sender cycling through bad encodings, one of 100 KB
        encoding = "x" * 100_000 if index == 7 else f"bad{chr(97 + index % 26)}_{index}"
        with pytest.raises(InputError) as caught:
            image_to_rgb(RawImage(encoding, 4, 4, 12, False, bytes(48)))
        messages.append(str(caught.value))
    assert sum(throttle.allow(message) for message in messages) == 1
    assert max(len(message) for message in messages) < 400


def test_idle_node_reports_stale_not_ok() -> None:
    clock = FakeClock()
    description = DetectorDescription("/anomaly_seg: detector", "ort", "m.onnx", (64, 128))
    statistics = FrameStatistics(clock=clock)
    clock.now += 10.0
    idle = diagnostic_status(description, statistics.snapshot(), None)
    assert idle.level == DiagnosticStatus.WARN
    assert idle.message.startswith("stale") and "no input" in idle.message
    before = statistics.snapshot()
    for _ in range(3):
        statistics.received()
        statistics.skipped()
    unwatched = diagnostic_status(description, statistics.snapshot(), before)
    assert unwatched.level == DiagnosticStatus.WARN and "nobody subscribes" in unwatched.message
    assert status_values(unwatched)["frames_skipped_no_subscribers"] == "3"


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
