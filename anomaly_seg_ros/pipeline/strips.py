"""Row-strip parallelism for the host post-processing, and per-thread scratch memory.

The refinements are local: an output pixel depends only on input pixels a few rows away.
So a map can be cut into horizontal strips, each strip padded by that reach (the *halo*)
on both sides, processed on its own thread, and the strips' cores stitched back together.
The result is bit-identical to one pass over the whole map as long as every output value
is computed from its neighbourhood alone, in a fixed order (direct filters, not running
sums such as ``cv2.boxFilter`` on floats). OpenCV and NumPy release the GIL, so the strips
really run in parallel.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np

from anomaly_seg_ros.errors import ConfigError

#: Upper bound of the automatic thread count: beyond this the halos cost more than they save.
MAX_AUTO_THREADS = 8


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def auto_threads() -> int:
    return max(1, min(MAX_AUTO_THREADS, available_cpus()))


_OPENCV_LOCK = threading.Lock()
_opencv_holders = 0
_opencv_threads_before = 1


@contextlib.contextmanager
def single_threaded_opencv() -> Iterator[None]:
    """OpenCV's own threads off (process-wide) while at least one caller is inside.

    The strips already keep every CPU busy; OpenCV's parallel loops inside each strip
    only add hand-offs between more threads than cores (boundary suppression at
    1024×2048 on 2 cores: 1.3× slower with them). OpenCV has one thread setting per
    process, so nested and concurrent users are counted and the first one in saves, the
    last one out restores it. Results do not depend on it.
    """
    global _opencv_holders, _opencv_threads_before
    with _OPENCV_LOCK:
        if _opencv_holders == 0:
            _opencv_threads_before = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _opencv_holders += 1
    try:
        yield
    finally:
        with _OPENCV_LOCK:
            _opencv_holders -= 1
            if _opencv_holders == 0:
                cv2.setNumThreads(_opencv_threads_before)


class ThreadScratch(threading.local):
    """Per-thread scratch arrays, reused from frame to frame.

    A 1024×2048 map is 2–24 MB; allocating several per frame costs more in page faults
    (fresh memory is zeroed by the kernel on first touch) than the arithmetic on them.
    Only for temporaries: functions using it still return new arrays.
    """

    #: distinct (name, shape, dtype) entries kept before starting over
    LIMIT = 64

    def __init__(self) -> None:
        self.buffers: dict[tuple[str, tuple[int, ...], str], np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        """This thread's array called ``name`` of that shape and dtype (contents undefined)."""
        key = (name, tuple(shape), np.dtype(dtype).str)
        buffer = self.buffers.get(key)
        if buffer is None:
            if len(self.buffers) >= self.LIMIT:  # many map sizes seen: start over
                self.buffers.clear()
            buffer = self.buffers[key] = np.empty(shape, dtype)
        return buffer


class StripPool:
    """A thread pool that runs row-local map operations strip by strip.

    :param threads: worker threads; 0 = one per available CPU, at most
        :data:`MAX_AUTO_THREADS`; 1 = everything on the caller's thread.
    :param min_rows: strips are never thinner than this (excluding halos), so small maps
        use fewer strips.
    """

    def __init__(self, threads: int = 0, min_rows: int = 64) -> None:
        if threads < 0:
            raise ConfigError(f"host_threads must be ≥ 0 (0 = automatic), got {threads}")
        self.threads = threads or auto_threads()
        self.min_rows = max(1, min_rows)
        self._executor = (
            ThreadPoolExecutor(self.threads, thread_name_prefix="anomaly_seg_strip")
            if self.threads > 1
            else None
        )

    def submit(self, function: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``function(*args)`` on the pool (on this thread for one thread, or once closed)."""
        executor = self._executor  # one read: close() may run on another thread
        if executor is not None:
            try:
                return executor.submit(function, *args)
            except RuntimeError:  # shut down meanwhile: run here instead
                pass
        future: Future[Any] = Future()
        try:
            future.set_result(function(*args))
        except BaseException as error:  # delivered through the future, as the pool would
            future.set_exception(error)
        return future

    def strips(self, height: int, halo: int = 0) -> list[tuple[int, int]]:
        """Core row ranges ``[start, stop)`` covering ``height`` rows, one per strip.

        A strip is at least ``min_rows`` and at least twice the halo high, so that no
        strip recomputes more rows of its neighbours than it computes of its own.
        """
        count = max(1, min(self.threads, height // max(self.min_rows, 2 * halo)))
        edges = np.linspace(0, height, count + 1).round().astype(int)
        return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]

    def map_rows(
        self,
        function: Callable[..., np.ndarray],
        arrays: Sequence[np.ndarray],
        halo: int,
    ) -> np.ndarray:
        """``function(*arrays)`` computed strip by strip.

        :param function: maps (h, W, ...) arrays of equal height to one (h, W) array; its
            output row r may depend on input rows within ``halo`` of r only, and not on
            where the array starts (see the module docstring).
        :param arrays: inputs of equal height (first axis).
        :param halo: rows of context added above and below each strip.
        :return: the same array as ``function(*arrays)``.
        """
        height = arrays[0].shape[0]
        if any(array.shape[0] != height for array in arrays):
            raise ValueError(f"arrays differ in height: {[a.shape for a in arrays]}")
        ranges = self.strips(height, halo)
        if len(ranges) == 1:
            return function(*arrays)

        def strip(start: int, stop: int) -> np.ndarray:
            top, bottom = max(0, start - halo), min(height, stop + halo)
            result = function(*(array[top:bottom] for array in arrays))
            return result[start - top : start - top + (stop - start)]

        with single_threaded_opencv():
            futures = [self.submit(strip, start, stop) for start, stop in ranges]
            parts = [future.result() for future in futures]
        return np.concatenate(parts, axis=0)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> StripPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
