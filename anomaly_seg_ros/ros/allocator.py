"""Keep a long-running process's freed frame buffers instead of handing them back each frame.

At 1024x2048 every frame allocates and frees tens of MB in buffers of 2-8 MB (the score,
labels, mask, colours and overlay at camera size, their CDR bytes, the input's CDR bytes).
With glibc's defaults each such buffer in a thread other than the main one comes from a
per-thread arena whose freed top is given back to the kernel, and a large one in any
thread can be its own ``mmap``: the next frame touches fresh pages, each a page fault that
the kernel zeroes. Measured in the node at 1024x2048: ~4,600 page faults per frame (3,500
in the inference thread); with one arena, a 32 MB ``mmap`` threshold and a 256 MB trim
threshold, set before the node's imports, 0-4 (the same buffers reused).
:func:`keep_freed_memory` sets that with ``mallopt``; the node's executables call it before
their first heavy import, because numpy, OpenCV, ONNX Runtime and rclpy start threads on
import and a thread keeps the arena it first got (a new thread may then be handed one of
those arenas, and the faults come back). The cost: up to the trim threshold of freed memory
stays with the process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

from anomaly_seg_ros.ros.c_library import c_function

#: ``mallopt`` parameters (glibc ``malloc.h``).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: Buffers up to this size come from the heap (glibc's largest threshold on 64-bit).
MMAP_THRESHOLD_BYTES = 32 * 2**20
#: Freed memory at the top of the heap kept for the next frames.
TRIM_THRESHOLD_BYTES = 256 * 2**20


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """One malloc arena for all threads, buffers below 32 MB from the heap, and up to
    256 MB of freed heap kept (idempotent).

    :return: True where glibc took all three settings; False elsewhere (another C library:
        nothing changed, everything works as before, only with more page faults).
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    mallopt = c_function(name, "mallopt", (ctypes.c_int, ctypes.c_int), ctypes.c_int)
    if mallopt is None:
        return False
    settings = (
        (M_ARENA_MAX, 1),
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
    )
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
