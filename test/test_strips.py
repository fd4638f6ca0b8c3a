"""Row-strip parallelism: strips cover the map, halos make strip results exact."""

import itertools
import threading

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.pipeline.strips import MAX_AUTO_THREADS, StripPool


def test_strips_cover_all_rows_without_overlap():
    with StripPool(4, min_rows=10) as pool:
        for height in (1, 9, 10, 39, 40, 41, 1000):
            strips = pool.strips(height)
            assert strips[0][0] == 0
            assert strips[-1][1] == height
            assert all(a[1] == b[0] for a, b in itertools.pairwise(strips))
            assert len(strips) == max(1, min(4, height // 10))


def test_map_rows_with_enough_halo_equals_one_pass(rng):
    image = rng.normal(size=(301, 64)).astype(np.float32)

    def blur(array):  # output row r reads rows r-6 … r+6
        return cv2.GaussianBlur(array, (13, 13), 3.0, borderType=cv2.BORDER_REPLICATE)

    whole = blur(image)
    with StripPool(5, min_rows=16) as pool:
        np.testing.assert_array_equal(pool.map_rows(blur, [image], halo=6), whole)
        # Too little context changes the rows next to the cuts: the halo is what matters.
        assert not np.array_equal(pool.map_rows(blur, [image], halo=2), whole)


def test_work_runs_on_pool_threads_and_errors_propagate():
    with StripPool(3) as pool:
        names = {pool.submit(lambda: threading.current_thread().name).result() for _ in range(6)}
        assert all(name.startswith("anomaly_seg_strip") for name in names)
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result()
    with StripPool(1) as serial:
        assert serial.submit(threading.current_thread).result() is threading.current_thread()
        with pytest.raises(ZeroDivisionError):
            serial.submit(lambda: 1 / 0).result()


def test_thread_count():
    assert 1 <= StripPool(0).threads <= MAX_AUTO_THREADS
    assert StripPool(1).strips(10_000) == [(0, 10_000)]
    with pytest.raises(ConfigError, match="host_threads"):
        StripPool(-1)


def test_thread_scratch_reuses_per_thread_and_stays_bounded():
    from anomaly_seg_ros.pipeline.strips import ThreadScratch

    scratch = ThreadScratch()
    first = scratch.get("a", (4, 5), np.float32)
    assert scratch.get("a", (4, 5), np.float32) is first
    assert scratch.get("a", (4, 5), np.uint8) is not first  # the dtype is part of the key
    other = []
    thread = threading.Thread(target=lambda: other.append(scratch.get("a", (4, 5), np.float32)))
    thread.start()
    thread.join()
    assert other[0] is not first and other[0].shape == (4, 5)
    for size in range(ThreadScratch.LIMIT + 5):
        scratch.get("b", (size + 1,), np.float32)
    assert len(scratch.buffers) <= ThreadScratch.LIMIT


def test_opencv_threads_are_off_inside_and_restored_by_the_last_one_out():
    import threading

    import cv2

    from anomaly_seg_ros.pipeline.strips import single_threaded_opencv

    before = cv2.getNumThreads()
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with single_threaded_opencv():
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(10)
    with single_threaded_opencv():
        assert cv2.getNumThreads() == 1
    assert cv2.getNumThreads() == 1  # the other holder is still inside
    release.set()
    holder.join(10)
    assert cv2.getNumThreads() == before
