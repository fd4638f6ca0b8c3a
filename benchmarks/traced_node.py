"""The detector node with a timestamp per step of each frame, for ``ros_overhead.py --trace``.

Run as ``python benchmarks/traced_node.py --ros-args ...`` (the node's own arguments) with
``ANOMALY_SEG_TRACE`` naming a file: the node runs unchanged, but its input callback, frame
processing, detection, each drawing and each output's publication append one line each to
that file: ``<CLOCK_MONOTONIC seconds> <who> <event> <frame stamp sec>``. The benchmark's
client appends its own events (publish start/end, each output's arrival) to the same file:
one system-wide clock, so :func:`summarise` can tell where a round trip's time goes.
"""

from __future__ import annotations

import os
import statistics
import struct
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

#: Environment variable naming the trace file.
TRACE_VARIABLE = "ANOMALY_SEG_TRACE"
_lock = threading.Lock()
_frame = threading.local()  # the stamp of the frame the inference thread works on


def cdr_stamp(cdr: Any) -> int:
    """``header.stamp.sec`` of a serialised Image (after the 4-byte encapsulation)."""
    return int(struct.unpack_from("<i", bytes(memoryview(cdr)[:8]), 4)[0])


def trace_event(path: str | Path, who: str, event: str, stamp: int) -> None:
    """Append one event line (``time.monotonic`` is CLOCK_MONOTONIC on Linux: one clock
    for all processes)."""
    line = f"{time.monotonic():.6f} {who} {event} {stamp}\n"
    with _lock, open(path, "a") as trace:
        trace.write(line)


#: (label, from event, to event): the stages printed by :func:`summarise`.
STAGES = (
    ("camera publish call", "client:publish_start", "client:publish_end"),
    ("camera -> node callback", "client:publish_start", "node:receive"),
    ("node queue", "node:receive", "node:process_start"),
    ("node decode + detect", "node:process_start", "node:detect_done"),
    ("node colours", "node:detect_done", "node:drawn_labels_color"),
    ("node overlay", "node:drawn_labels_color", "node:drawn_overlay"),
    ("node overlay publish", "node:drawn_overlay", "node:published_overlay"),
    ("overlay delivery", "node:published_overlay", "client:arrived_overlay"),
    ("node process (receive -> last publish)", "node:receive", "node:process_end"),
    ("round trip", "client:publish_start", "client:all_arrived"),
)


def summarise(path: str | Path, skip: frozenset[int] = frozenset()) -> dict[str, float]:
    """Median milliseconds of each of :data:`STAGES` over the frames in a trace file.

    :param skip: frame stamps to leave out (warm-up).
    """
    frames: dict[int, dict[str, float]] = defaultdict(dict)
    for line in Path(path).read_text().splitlines():
        when, who, event, stamp = line.split()
        frames[int(stamp)].setdefault(f"{who}:{event}", float(when))
    result = {}
    for label, start, end in STAGES:
        spans = [
            (events[end] - events[start]) * 1e3
            for stamp, events in frames.items()
            if stamp not in skip and start in events and end in events
        ]
        if spans:
            result[label] = round(statistics.median(spans), 1)
    return result


def _install(path: str) -> None:
    """Wrap the node's per-frame steps so that each logs an event."""
    from anomaly_seg_ros.detector import Detector
    from anomaly_seg_ros.ros import node as node_module

    def log(event: str, stamp: int | None = None) -> None:
        trace_event(path, "node", event, getattr(_frame, "stamp", -1) if stamp is None else stamp)

    node_class = node_module.DetectorNode
    on_image, process = node_class._on_image, node_class._process
    detect, render = Detector.detect, Detector.render
    publish_cdr = node_module.publish_cdr

    def traced_on_image(self: Any, cdr: bytes) -> None:
        log("receive", cdr_stamp(cdr))
        on_image(self, cdr)

    def traced_process(self: Any, frame: Any) -> None:
        _frame.stamp = cdr_stamp(frame.cdr)
        log("process_start")
        try:
            process(self, frame)
        finally:
            log("process_end")

    def traced_detect(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = detect(self, *args, **kwargs)
        log("detect_done")
        return result

    def traced_render(self: Any, rgb: Any, result: Any, outputs: Any) -> Any:
        result = render(self, rgb, result, outputs)
        log("drawn_" + "+".join(outputs))
        return result

    def traced_publish_cdr(publisher: Any, cdr: Any) -> None:
        publish_cdr(publisher, cdr)
        log("published_" + publisher.topic_name.rsplit("/", 1)[-1], cdr_stamp(cdr))

    node_class._on_image = traced_on_image  # type: ignore[method-assign]
    node_class._process = traced_process  # type: ignore[method-assign]
    Detector.detect = traced_detect  # type: ignore[method-assign]
    Detector.render = traced_render  # type: ignore[method-assign]
    node_module.publish_cdr = traced_publish_cdr


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from anomaly_seg_ros.ros.allocator import keep_freed_memory

    keep_freed_memory()  # before the node's imports start threads, as entry.py does
    _install(os.environ[TRACE_VARIABLE])
    from anomaly_seg_ros.ros.node import main

    sys.exit(main())
