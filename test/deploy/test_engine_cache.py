"""Engine cache: build once, load after, rebuild anything stale, foreign or damaged.

The TensorRT build is passed to :func:`ensure_engine` as a plain callable; here it is a
function returning fixed bytes, so the whole build-or-load flow runs on real files.
"""

import dataclasses
import json
import threading
import time

import pytest

from anomaly_seg_ros.atomic import temp_prefix
from anomaly_seg_ros.deploy.engine_cache import (
    CACHE_DIR_ENV,
    cached_engine_path,
    default_cache_dir,
    ensure_engine,
    metadata_path,
    read_metadata,
    read_verified_engine,
)
from anomaly_seg_ros.deploy.engine_key import EngineKey
from anomaly_seg_ros.errors import BackendError, ModelError

KEY = EngineKey("10.3.0.30", "Orin", "8.7", "fp16", (1, 3, 512, 1024), "ab" * 32)


class CountingBuild:
    """Stands in for the minutes-long TensorRT build: returns bytes, counts calls."""

    def __init__(self, payload=b"serialized-engine-v1", delay_s=0.0):
        self.payload, self.delay_s, self.calls = payload, delay_s, 0

    def __call__(self):
        self.calls += 1
        time.sleep(self.delay_s)
        return self.payload


@pytest.fixture
def engine_path(tmp_path):
    return cached_engine_path("models/road.onnx", KEY, tmp_path / "engines")


def test_cache_path_carries_model_name_and_key_digest(tmp_path):
    path = cached_engine_path("models/road.onnx", KEY, tmp_path)
    assert path == tmp_path / f"road-{KEY.digest()}.engine"
    other_gpu = dataclasses.replace(KEY, gpu_name="NVIDIA H100 80GB HBM3")
    assert cached_engine_path("models/road.onnx", other_gpu, tmp_path) != path
    assert metadata_path(path).name == path.name + ".json"


def test_default_cache_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "override"))
    assert default_cache_dir() == tmp_path / "override"
    monkeypatch.delenv(CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "anomaly_seg_ros" / "engines"


def test_build_only_builds_once_then_loads(engine_path):
    build, messages = CountingBuild(), []
    first = ensure_engine(engine_path, KEY, build, progress=messages.append)
    assert first.built and first.data == build.payload and build.calls == 1
    assert engine_path.read_bytes() == build.payload
    assert any("this takes minutes" in message for message in messages)
    assert any("written" in message for message in messages)
    stored_key, document = read_metadata(engine_path)
    assert stored_key == KEY and document["engine_bytes"] == len(build.payload)

    messages.clear()
    second = ensure_engine(engine_path, KEY, build, progress=messages.append)
    assert not second.built and second.data == build.payload and build.calls == 1
    assert messages == [f"using cached engine {engine_path}"]


@pytest.mark.parametrize(
    "field, value",
    [
        ("tensorrt_version", "10.7.0.23"),
        ("gpu_name", "NVIDIA GeForce RTX 4090"),
        ("compute_capability", "8.9"),
        ("precision", "fp32"),
        ("input_shape", (1, 3, 1024, 2048)),
    ],
)
def test_foreign_engine_is_rebuilt_not_loaded(engine_path, field, value):
    """An engine copied from another setup under the same name (e.g. a shared cache)."""
    foreign_key = dataclasses.replace(KEY, **{field: value})
    ensure_engine(engine_path, foreign_key, CountingBuild(b"foreign-engine"))
    data, reason = read_verified_engine(engine_path, KEY)
    assert data is None and field in reason

    build = CountingBuild(b"engine-for-this-setup")
    result = ensure_engine(engine_path, KEY, build)
    assert result.built and build.calls == 1 and field in result.reason
    assert engine_path.read_bytes() == b"engine-for-this-setup"
    assert read_metadata(engine_path)[0] == KEY


def test_truncated_engine_is_rebuilt(engine_path):
    ensure_engine(engine_path, KEY, CountingBuild())
    engine_path.write_bytes(engine_path.read_bytes()[:-3])
    build = CountingBuild()
    result = ensure_engine(engine_path, KEY, build)
    assert result.built and "truncated or replaced" in result.reason
    assert engine_path.read_bytes() == build.payload


@pytest.mark.parametrize("damage", ["missing", "garbage", "wrong_format", "no_key"])
def test_unreadable_metadata_means_rebuild(engine_path, damage):
    ensure_engine(engine_path, KEY, CountingBuild())
    meta = metadata_path(engine_path)
    if damage == "missing":
        meta.unlink()
    elif damage == "garbage":
        meta.write_bytes(b"{\xff truncated")
    elif damage == "wrong_format":
        meta.write_text(json.dumps({"format": "something/else", "version": 1}))
    else:
        document = json.loads(meta.read_text())
        del document["key"]
        meta.write_text(json.dumps(document))
    with pytest.raises(ModelError):
        read_metadata(engine_path)
    build = CountingBuild()
    assert ensure_engine(engine_path, KEY, build).built and build.calls == 1
    assert read_metadata(engine_path)[0] == KEY


def test_rebuild_forces_a_build_and_leftovers_are_cleared(engine_path):
    ensure_engine(engine_path, KEY, CountingBuild())
    crashed = engine_path.parent / f"{temp_prefix(engine_path)}dead.tmp"
    crashed.write_bytes(b"half an engine from a killed build")
    build = CountingBuild(b"serialized-engine-v2")
    result = ensure_engine(engine_path, KEY, build, rebuild=True, extra_metadata={"ws": 1})
    assert result.built and result.reason == "rebuild requested" and build.calls == 1
    assert not crashed.exists()
    assert read_metadata(engine_path)[1]["ws"] == 1


def test_failed_build_leaves_no_usable_engine(engine_path):
    ensure_engine(engine_path, KEY, CountingBuild())

    def broken_build():
        raise BackendError("TensorRT failed to build")

    with pytest.raises(BackendError):
        ensure_engine(engine_path, KEY, broken_build, rebuild=True)
    data, reason = read_verified_engine(engine_path, KEY)
    assert data is None and "missing" in reason  # the next start rebuilds
    with pytest.raises(BackendError, match="produced nothing"):
        ensure_engine(engine_path, KEY, CountingBuild(b""))


def test_engine_without_onnx_is_checked_on_runtime_fields_only(engine_path):
    ensure_engine(engine_path, KEY, CountingBuild())
    runtime_only = dataclasses.replace(KEY, onnx_sha256="", precision="fp16+int8")
    data, _ = read_verified_engine(engine_path, runtime_only)
    assert data is None
    data, reason = read_verified_engine(
        engine_path, runtime_only, ignore=("onnx_sha256", "precision")
    )
    assert data == b"serialized-engine-v1" and reason == ""


def test_concurrent_starts_build_once(engine_path):
    """The node and an install-time build_only starting together share one build."""
    build = CountingBuild(delay_s=0.5)
    results = []

    def start():
        results.append(ensure_engine(engine_path, KEY, build))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert build.calls == 1
    assert sorted(result.built for result in results) == [False, True]
    assert all(result.data == build.payload for result in results)
