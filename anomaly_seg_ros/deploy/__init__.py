"""Deployment on the car's GPU: TensorRT engine building, the engine cache, CUDA memory.

Pure modules (no tensorrt, no cuda; importable and tested anywhere):
:mod:`.engine_key` (what an engine depends on), :mod:`.engine_cache` (paths, metadata,
stale-engine detection, build-or-load; crash-safe writes through
:mod:`anomaly_seg_ros.atomic`).

GPU modules (imported only when TensorRT is chosen): :mod:`.cuda_runtime` (checked
cuda-python calls), :mod:`.trt_builder` (ONNX → strongly-typed engine).
"""
