"""``build-engine`` and ``check-engine`` on a real exported model, on the CPU.

check-engine compares ONNX Runtime with itself here (the only candidate a CPU machine
has), which must agree exactly; the TensorRT candidates run in test/backends on a GPU.
"""

import argparse
import importlib.util
import logging

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.commands import build_engine, check_engine
from anomaly_seg_ros.errors import BackendError, ConfigError


def parse(module, argv):
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers())
    return parser.parse_args(argv)


def tensorrt_installed():
    spec = importlib.util.find_spec("tensorrt")
    return spec is not None and spec.origin is not None  # stubs alone are a namespace


def test_check_engine_onnxruntime_against_itself_passes(tiny_model, tmp_path, caplog):
    rng = np.random.default_rng(3)
    for index in range(2):
        image = rng.integers(0, 256, (96, 160, 3), dtype=np.uint8)  # resized by preprocess
        cv2.imwrite(str(tmp_path / f"frame{index}.png"), image)
    args = parse(
        check_engine,
        ["check-engine", str(tiny_model), "--backend", "onnxruntime", "--images", str(tmp_path)],
    )
    with caplog.at_level(logging.INFO):
        assert args.func(args) == 0
    assert "2 frame(s), label agreement 100.0000 %" in caplog.text
    assert "parity check passed" in caplog.text


def test_check_engine_fails_below_min_agreement(tiny_model, caplog):
    argv = ["check-engine", str(tiny_model), "--backend", "onnxruntime", "--frames", "1"]
    args = parse(check_engine, [*argv, "--min-agreement", "100.5"])
    with caplog.at_level(logging.INFO):
        assert args.func(args) == 1
    assert "synthetic frames" in caplog.text and "FAILED" in caplog.text


def test_check_engine_polygraphy_needs_an_engine(tiny_model):
    argv = ["check-engine", str(tiny_model), "--backend", "onnxruntime", "--frames", "1"]
    args = parse(check_engine, [*argv, "--polygraphy"])
    with pytest.raises(ConfigError, match="--engine"):
        args.func(args)


def test_synthetic_frames_have_the_model_input_shape(tiny_model):
    from anomaly_seg_ros.model.sidecar import load_model_info

    info = load_model_info(tiny_model)
    args = parse(check_engine, ["check-engine", str(tiny_model), "--frames", "3"])
    frames = check_engine.sample_frames(args, info)
    assert len(frames) == 3
    assert all(f.shape == (1, 3, 64, 128) and f.dtype == np.float32 for f in frames)
    assert not np.array_equal(frames[0], frames[1])


@pytest.mark.skipif(tensorrt_installed(), reason="TensorRT is installed: tested on the GPU")
def test_build_engine_without_tensorrt_says_what_to_install(tiny_model):
    args = parse(build_engine, ["build-engine", str(tiny_model), "--workspace-gib", "1"])
    with pytest.raises(BackendError, match="Install the TensorRT Python wheel"):
        args.func(args)


def test_build_engine_rejects_bad_workspace(tiny_model):
    args = parse(build_engine, ["build-engine", str(tiny_model), "--workspace-gib", "0"])
    with pytest.raises(BackendError, match="workspace"):
        args.func(args)


def test_copy_sidecar_puts_model_json_beside_engine(tiny_model, tmp_path):
    engine = tmp_path / "deploy" / "road.engine"
    engine.parent.mkdir()
    build_engine.copy_sidecar(tiny_model, engine)
    assert (tmp_path / "deploy" / "road.json").read_bytes() == tiny_model.with_suffix(
        ".json"
    ).read_bytes()
