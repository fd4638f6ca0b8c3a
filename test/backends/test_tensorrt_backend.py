"""TensorRT backend on a real GPU: build, cache, parity with ONNX Runtime, threads, close.

Skipped with the reason when TensorRT, cuda-python or a CUDA GPU is missing. Without
TensorRT, asking for the backend must fail with a message saying what to install.
"""

import dataclasses
import importlib.util
import json
import threading

import numpy as np
import pytest

from anomaly_seg_ros.backends import create_backend
from anomaly_seg_ros.errors import BackendError, ModelError
from anomaly_seg_ros.model.sidecar import load_model_info


def gpu_skip_reason():
    """Why the GPU tests cannot run here, or None."""
    spec = importlib.util.find_spec("tensorrt")
    if spec is None or spec.origin is None:  # tensorrt-stubs alone make a namespace package
        return "TensorRT Python package not installed"
    if importlib.util.find_spec("cuda") is None:
        return "cuda-python not installed"
    from anomaly_seg_ros.deploy import cuda_runtime

    if cuda_runtime.device_count() == 0:
        return "no CUDA GPU (or driver) available"
    return None


SKIP_REASON = gpu_skip_reason()


def needs_gpu(test):
    """Mark ``test`` as a GPU test, skipped with the reason where it cannot run."""
    return pytest.mark.gpu(
        pytest.mark.skipif(SKIP_REASON is not None, reason=str(SKIP_REASON))(test)
    )


@pytest.mark.skipif(SKIP_REASON is None, reason="TensorRT and a GPU are present")
def test_backend_unavailable_says_what_to_do(tiny_model):
    with pytest.raises(BackendError) as error:
        create_backend("tensorrt", tiny_model)
    assert "not available" in str(error.value) or "CUDA" in str(error.value)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


@pytest.fixture(scope="module")
def frames(tiny_model):
    info = load_model_info(tiny_model)
    rng = np.random.default_rng(7)
    shape = (1, 3, info.input_height, info.input_width)
    return [rng.normal(0, 1, shape).astype(np.float32) for _ in range(3)]


@needs_gpu
def test_engine_matches_onnxruntime_and_is_cached(tiny_model, cache_dir, frames):
    from anomaly_seg_ros.deploy.trt_builder import prepare_engine

    reference = create_backend("onnxruntime", tiny_model, providers=["CPUExecutionProvider"])
    with create_backend("tensorrt", tiny_model, cache_dir=cache_dir, profile=True) as backend:
        assert "tensorrt" in backend.describe()
        for frame in frames:
            expected, actual = reference.infer(frame), backend.infer(frame)
            assert actual.label.dtype == np.uint8 and actual.shape == expected.shape
            # TensorRT may run fp32 convolutions as TF32: near-ties can flip a few labels.
            assert np.mean(actual.label == expected.label) > 0.98
            np.testing.assert_allclose(actual.max_logit, expected.max_logit, atol=5e-2)
            np.testing.assert_allclose(actual.entropy, expected.entropy, atol=5e-2)
        assert set(backend.last_timings) == {"h2d", "network", "d2h"}
        assert all(seconds >= 0 for seconds in backend.last_timings.values())
    again = prepare_engine(tiny_model, cache_dir=cache_dir)
    assert not again.built  # second start: loaded, not rebuilt


@needs_gpu
def test_pinned_input_buffer_and_worker_thread(tiny_model, cache_dir, frames):
    with create_backend("tensorrt", tiny_model, cache_dir=cache_dir) as backend:
        expected = backend.infer(frames[0])
        staged = backend.input_buffer()
        staged[...] = frames[0]
        from_buffer = backend.infer(staged)
        results = []
        worker = threading.Thread(target=lambda: results.append(backend.infer(frames[0])))
        worker.start()
        worker.join(timeout=60)
        for result in (from_buffer, results[0]):
            np.testing.assert_array_equal(result.label, expected.label)
            np.testing.assert_array_equal(result.max_logit, expected.max_logit)
    backend.close()  # second close is harmless
    with pytest.raises(BackendError, match="closed"):
        backend.infer(frames[0])


@needs_gpu
def test_prebuilt_engine_loads_and_foreign_one_is_refused(tiny_model, tmp_path, frames):
    from anomaly_seg_ros.commands.build_engine import copy_sidecar
    from anomaly_seg_ros.deploy.engine_cache import metadata_path
    from anomaly_seg_ros.deploy.trt_builder import prepare_engine

    engine = tmp_path / "tiny.engine"
    timing_cache = tmp_path / "timing.cache"
    result = prepare_engine(tiny_model, engine_path=engine, timing_cache=timing_cache)
    assert result.built and engine.is_file() and timing_cache.stat().st_size > 0
    copy_sidecar(tiny_model, engine)
    with create_backend("tensorrt", engine) as backend:
        assert backend.infer(frames[0]).shape == frames[0].shape[2:]
    document = json.loads(metadata_path(engine).read_text())
    document["key"]["gpu_name"] = "Some Other GPU"
    metadata_path(engine).write_text(json.dumps(document))
    with pytest.raises(ModelError, match="Some Other GPU"):
        create_backend("tensorrt", engine)


@needs_gpu
def test_sidecar_input_size_mismatch_is_refused(tiny_model, tmp_path):
    info = load_model_info(tiny_model)
    wrong = dataclasses.replace(info, input_height=info.input_height * 2)
    with pytest.raises(ModelError, match="sidecar"):
        create_backend("tensorrt", tiny_model, wrong, cache_dir=tmp_path)
