"""Publishing CDR bytes without holding Python's interpreter lock.

rclpy's ``Publisher.publish`` converts the message to C and hands it to the middleware
(which serialises it and copies it into shared memory) with the interpreter lock held
throughout: at 1024x2048 the node's five outputs are 24 MB, about 12 ms of copying, during
which its inference thread, drawing the next picture, cannot run a line of Python. So the
node serialises each output itself (:func:`~anomaly_seg_ros.io.messages.image_cdr`, numpy,
lock released) and hands the bytes to ``rcl_publish_serialized_message`` through ctypes,
which releases the lock for the length of a foreign call. The ``rcl`` library is the one
rclpy already loaded (found in ``/proc/self/maps``); where it cannot be found (not Linux),
rclpy's own serialised publish (``publish(bytes)``, lock held) does the same job.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from anomaly_seg_ros.ros.c_library import c_function

#: The rcl library rclpy links against, as it appears in a process's memory map.
RCL_LIBRARY = "librcl.so"


class _SerializedMessage(ctypes.Structure):
    """``rcl_serialized_message_t`` (``rcutils_uint8_array_t``): buffer, length, capacity
    and an allocator (four function pointers and a state pointer) that publishing does not
    touch."""

    _fields_ = (
        ("buffer", ctypes.c_void_p),
        ("buffer_length", ctypes.c_size_t),
        ("buffer_capacity", ctypes.c_size_t),
        ("allocator", ctypes.c_void_p * 5),
    )


def loaded_library(name: str, maps: str = "/proc/self/maps") -> str | None:
    """Path of a shared library this process has loaded (``name`` = its file name)."""
    try:
        with open(maps) as lines:
            for line in lines:
                path = line.rstrip().split(maxsplit=5)[-1]
                if path.rsplit("/", 1)[-1] == name:
                    return path
    except OSError:
        return None
    return None


@functools.lru_cache(maxsize=1)
def _rcl_publish_serialized() -> Callable[..., int] | None:
    """``rcl_publish_serialized_message`` of the loaded rcl, or None where not found."""
    path = loaded_library(RCL_LIBRARY)
    if path is None:
        return None
    arguments = (ctypes.c_void_p, ctypes.POINTER(_SerializedMessage), ctypes.c_void_p)
    return c_function(path, "rcl_publish_serialized_message", arguments, ctypes.c_int)


def lock_free_publishing() -> bool:
    """True when :func:`publish_cdr` releases the interpreter lock (rcl found)."""
    return _rcl_publish_serialized() is not None


def publish_cdr(publisher: Any, cdr: np.ndarray) -> None:
    """Publish one serialised message (its CDR bytes, encapsulation header included).

    :param publisher: an rclpy ``Publisher`` (or ``LifecyclePublisher``) of the message's
        type; an inactive lifecycle publisher gets it through rclpy, which drops it.
    :param cdr: C-contiguous (N,) uint8 array; rcl copies it before returning.
    :raises RuntimeError: rcl refused to publish (its return code in the message).
    """
    publish = _rcl_publish_serialized()
    if publish is None or not getattr(publisher, "is_activated", True):
        publisher.publish(cdr.tobytes())
        return
    buffer = np.ascontiguousarray(cdr, np.uint8)
    message = _SerializedMessage(buffer.ctypes.data, buffer.nbytes, buffer.nbytes)
    with publisher.handle:  # keeps the rcl publisher alive for the call
        code = publish(publisher.handle.pointer, ctypes.byref(message), None)
    if code != 0:
        raise RuntimeError(f"rcl_publish_serialized_message failed with code {code}")
