"""Checked cuda-python calls: errors become BackendError; buffers round-trip on a GPU.

Needs cuda-python (``cuda.bindings``). Without a GPU its calls fail for real (no driver
or no device), which is exactly the error path to test; the copies need a GPU.
"""

import importlib.util

import numpy as np
import pytest

from anomaly_seg_ros.errors import BackendError

if importlib.util.find_spec("cuda") is None:
    pytest.skip("cuda-python not installed", allow_module_level=True)

from anomaly_seg_ros.deploy import cuda_runtime

HAS_GPU = cuda_runtime.device_count() > 0


@pytest.mark.skipif(HAS_GPU, reason="a GPU is present: CUDA calls succeed")
def test_failed_cuda_call_raises_with_error_name():
    with pytest.raises(BackendError, match=r"cudaSetDevice\(0\) failed: cudaError\w+ \(.+\)"):
        cuda_runtime.use_device(0)
    with pytest.raises(BackendError, match=r"cudaMalloc\(1024\) failed: cudaError"):
        cuda_runtime.DeviceBuffer(1024)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU (or driver) available")
def test_pinned_and_device_buffers_round_trip():
    cuda_runtime.use_device(0)
    name, capability = cuda_runtime.gpu_identity(0)
    assert name and capability.count(".") == 1
    source = cuda_runtime.PinnedBuffer((2, 3, 5), np.float16)
    target = cuda_runtime.PinnedBuffer((2, 3, 5), np.float16)
    device = cuda_runtime.DeviceBuffer(source.nbytes)
    stream = cuda_runtime.Stream()
    start, end = cuda_runtime.Event(), cuda_runtime.Event()
    try:
        source.array[...] = np.arange(30, dtype=np.float16).reshape(2, 3, 5)
        stream.record(start)
        stream.copy_to_device(device, source)
        stream.copy_to_host(target, device)
        stream.record(end)
        stream.synchronize()
        np.testing.assert_array_equal(target.array, source.array)
        assert end.milliseconds_since(start) >= 0.0
    finally:
        for resource in (source, target, device):
            resource.free()
            resource.free()  # idempotent
        start.destroy()
        end.destroy()
        stream.destroy()
