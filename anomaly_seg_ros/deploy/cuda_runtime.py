"""Small, checked wrappers over the CUDA runtime API of cuda-python (``cuda.bindings``).

Every cuda-python call returns ``(cudaError_t, *values)``; :func:`check` turns a
non-success code into :class:`BackendError` naming the call and the error, so no code
path can ignore a failed allocation or copy. The runtime API works with the device's
*primary* context: :func:`use_device` (``cudaSetDevice``) makes it current in the calling
thread, which is what a ROS callback or worker thread must do before touching the GPU
(pycuda's ``autoinit`` context, bound to the importing thread, is what broke there).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from anomaly_seg_ros.errors import BackendError

try:  # cuda-python >= 12.6.1 (JetPack 6 pip wheels, CUDA 13)
    from cuda.bindings import runtime as cudart
except ImportError:  # older cuda-python 12.x layout
    from cuda import cudart


def check(result: tuple[Any, ...], call: str) -> Any:
    """Unpack a cuda-python result, raising on any error code.

    :param result: the tuple a ``cudart`` function returned.
    :param call: the call's name, for the message.
    :return: None, the single value, or a tuple of the values after the error code.
    :raises BackendError: the error code is not ``cudaSuccess``.
    """
    error, values = result[0], result[1:]
    if error != cudart.cudaError_t.cudaSuccess:
        name = getattr(error, "name", repr(error))
        description = cudart.cudaGetErrorString(error)[1]
        if isinstance(description, bytes):
            description = description.decode(errors="replace")
        raise BackendError(f"{call} failed: {name} ({description})")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def device_count() -> int:
    """Number of usable CUDA devices; 0 when there is no GPU or no driver."""
    error, count = cudart.cudaGetDeviceCount()
    if error != cudart.cudaError_t.cudaSuccess:
        return 0
    return int(count)


def use_device(device: int) -> None:
    """Make ``device``'s primary context current in the calling thread."""
    check(cudart.cudaSetDevice(device), f"cudaSetDevice({device})")


def gpu_identity(device: int) -> tuple[str, str]:
    """``(name, "major.minor")`` of ``device``, the GPU part of the engine cache key."""
    properties = check(cudart.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    name = properties.name
    if isinstance(name, bytes):
        name = name.split(b"\0", 1)[0].decode(errors="replace")
    return str(name).strip(), f"{properties.major}.{properties.minor}"


class DeviceBuffer:
    """``nbytes`` of device memory (``cudaMalloc``); :attr:`ptr` is the address."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = int(nbytes)
        self.ptr: int = int(check(cudart.cudaMalloc(self.nbytes), f"cudaMalloc({nbytes})"))

    def free(self) -> None:
        """Release the memory; safe to call twice."""
        if self.ptr:
            pointer, self.ptr = self.ptr, 0
            check(cudart.cudaFree(pointer), "cudaFree")


class PinnedBuffer:
    """Page-locked host memory (``cudaHostAlloc``) seen as a numpy array.

    Copies between pinned memory and the GPU run asynchronously at full bus speed;
    pageable memory would be staged through a driver buffer on every frame.
    """

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype[Any] | type) -> None:
        self.dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(shape)) * self.dtype.itemsize
        self.ptr: int = int(
            check(
                cudart.cudaHostAlloc(self.nbytes, cudart.cudaHostAllocDefault),
                f"cudaHostAlloc({self.nbytes})",
            )
        )
        raw = memoryview((ctypes.c_byte * self.nbytes).from_address(self.ptr)).cast("B")
        self.array: np.ndarray = np.frombuffer(raw, dtype=self.dtype).reshape(shape)

    def free(self) -> None:
        """Release the memory; the array must not be used afterwards. Safe to call twice."""
        if self.ptr:
            pointer, self.ptr = self.ptr, 0
            self.array = np.empty(0, self.dtype)  # drop the view of freed memory
            check(cudart.cudaFreeHost(pointer), "cudaFreeHost")


class Stream:
    """A non-blocking CUDA stream (does not synchronize with the legacy default stream)."""

    def __init__(self) -> None:
        self._stream: Any = check(
            cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking),
            "cudaStreamCreateWithFlags",
        )

    @property
    def handle(self) -> int:
        """The ``cudaStream_t`` as an integer, as TensorRT's ``execute_async_v3`` wants."""
        return int(self._stream)

    def copy_to_device(self, target: DeviceBuffer, source: PinnedBuffer) -> None:
        """Queue a host→device copy of the whole ``source``."""
        kind = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        call = cudart.cudaMemcpyAsync(target.ptr, source.ptr, source.nbytes, kind, self._stream)
        check(call, "cudaMemcpyAsync(host to device)")

    def copy_to_host(self, target: PinnedBuffer, source: DeviceBuffer) -> None:
        """Queue a device→host copy filling the whole ``target``."""
        kind = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        call = cudart.cudaMemcpyAsync(target.ptr, source.ptr, target.nbytes, kind, self._stream)
        check(call, "cudaMemcpyAsync(device to host)")

    def record(self, event: Event) -> None:
        """Record ``event`` at the current end of the stream's queue."""
        check(cudart.cudaEventRecord(event.event, self._stream), "cudaEventRecord")

    def synchronize(self) -> None:
        """Wait for all queued work; reports errors of earlier asynchronous work too."""
        check(cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")

    def destroy(self) -> None:
        """Release the stream; safe to call twice."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            check(cudart.cudaStreamDestroy(stream), "cudaStreamDestroy")


class Event:
    """A CUDA event for timing stages on a stream."""

    def __init__(self) -> None:
        self.event: Any = check(cudart.cudaEventCreate(), "cudaEventCreate")

    def milliseconds_since(self, start: Event) -> float:
        """GPU time between ``start`` and this event (both recorded and completed)."""
        return float(
            check(cudart.cudaEventElapsedTime(start.event, self.event), "cudaEventElapsedTime")
        )

    def destroy(self) -> None:
        """Release the event; safe to call twice."""
        if self.event is not None:
            event, self.event = self.event, None
            check(cudart.cudaEventDestroy(event), "cudaEventDestroy")
