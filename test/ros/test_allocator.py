"""keep_freed_memory: frame-sized buffers freed in a worker thread are reused, not faulted
in afresh every frame (the node's inference thread, ``anomaly_seg_ros.ros.allocator``)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: A worker thread allocates and fills the node's outputs at 1024x2048 (score 8 MB, colours
#: and overlay 6 MB each, labels and mask 2 MB each), frees them, 20 times, and reports its
#: page faults; ``keep`` decides whether keep_freed_memory runs first.
PROBE = textwrap.dedent(
    """
    import json, resource, sys, threading
    import numpy as np
    from anomaly_seg_ros.ros.allocator import keep_freed_memory

    applied = keep_freed_memory() if sys.argv[1] == "keep" else None
    faults = []

    def frame():
        return [np.ones(size * 2**20, np.uint8) for size in (8, 6, 6, 2, 2)]

    def frames():
        for _ in range(3):  # warm-up: the first buffers are always fresh pages
            frame()
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        for _ in range(20):
            frame()
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)

    worker = threading.Thread(target=frames)
    worker.start()
    worker.join()
    print(json.dumps({"applied": applied, "faults": faults[0]}))
    """
)


def probe(mode: str) -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(completed.stdout.splitlines()[-1]))


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt"
)
def test_freed_frame_buffers_are_reused_in_worker_threads() -> None:
    default, kept = probe("default"), probe("keep")
    assert kept["applied"] is True
    # 20 frames of 24 MB are 122,880 pages. With glibc 2.36's defaults the thread's arena
    # gives much of each freed frame back to the kernel and the next frame faults it in again
    # (about 50,000 faults); kept, the same memory is reused and (almost) nothing faults. The
    # bound is far from both (the margin: the interpreter's own small allocations); the
    # default's count is only reported, as other glibc versions may trim less.
    assert int(kept["faults"]) < 2_000, (kept, default)
