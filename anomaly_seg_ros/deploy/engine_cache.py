"""The engine cache: where engines live, their metadata, and build-or-load.

Each cached engine ``<model>-<key digest>.engine`` has a metadata file
``<model>-<key digest>.engine.json`` beside it, holding the :class:`EngineKey` it was
built for and the SHA-256 of the engine bytes. An engine is used only if its metadata
reads, matches the wanted key, and matches the engine bytes; anything else (missing,
foreign, truncated, half-written) is rebuilt, never handed to TensorRT blindly.

The build itself is passed in as a plain callable, so the whole flow runs and is tested
without TensorRT; :mod:`anomaly_seg_ros.deploy.trt_builder` supplies the real one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anomaly_seg_ros.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    remove_stale_temp_files,
)
from anomaly_seg_ros.deploy.engine_key import EngineKey, sha256_bytes
from anomaly_seg_ros.errors import BackendError, ModelError

LOGGER = logging.getLogger(__name__)

METADATA_FORMAT = "anomaly_seg_ros/engine"
METADATA_VERSION = 1
#: Environment variable that overrides the default cache folder.
CACHE_DIR_ENV = "ANOMALY_SEG_ENGINE_CACHE"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class EngineResult:
    """Outcome of :func:`ensure_engine`.

    :param path: the engine file.
    :param data: the verified serialized engine, ready for ``deserialize_cuda_engine``.
    :param built: True if it was (re)built now, False if the cached one was valid.
    :param reason: why it was built (empty when loaded from the cache).
    """

    path: Path
    data: bytes
    built: bool
    reason: str = ""


def default_cache_dir() -> Path:
    """``$ANOMALY_SEG_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/anomaly_seg_ros/engines``,
    else ``~/.cache/anomaly_seg_ros/engines``."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "anomaly_seg_ros" / "engines"


def cached_engine_path(onnx_path: str | Path, key: EngineKey, cache_dir: Path | None) -> Path:
    """Path of the cached engine for ``onnx_path`` under ``key``.

    The key digest in the name lets engines for several GPUs or TensorRT versions share
    one folder (e.g. on a network drive) without overwriting each other.
    """
    folder = default_cache_dir() if cache_dir is None else Path(cache_dir)
    return folder / f"{Path(onnx_path).stem}-{key.digest()}.engine"


def metadata_path(engine_path: str | Path) -> Path:
    """``x.engine`` → ``x.engine.json`` (``x.json`` is the model sidecar, kept apart)."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


def engine_metadata(key: EngineKey, data: bytes, **extra: Any) -> dict[str, Any]:
    """The metadata document written beside an engine built for ``key``."""
    return {
        "format": METADATA_FORMAT,
        "version": METADATA_VERSION,
        "key": key.to_json(),
        "engine_bytes": len(data),
        "engine_sha256": sha256_bytes(data),
        **extra,
    }


def read_metadata(engine_path: str | Path) -> tuple[EngineKey, dict[str, Any]]:
    """Read the metadata of ``engine_path``.

    :return: the key the engine was built for, and the whole document.
    :raises ModelError: missing, unreadable, or not engine metadata of this version.
    """
    path = metadata_path(engine_path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ModelError(f"engine metadata {path} is missing") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"engine metadata {path} is unreadable ({error})") from error
    if not isinstance(document, dict) or document.get("format") != METADATA_FORMAT:
        raise ModelError(f"{path} is not anomaly_seg_ros engine metadata")
    if document.get("version") != METADATA_VERSION:
        raise ModelError(f"{path}: metadata version {document.get('version')!r} is not supported")
    try:
        key = EngineKey.from_json(document["key"])
        document["engine_bytes"] = int(document["engine_bytes"])
        document["engine_sha256"] = str(document["engine_sha256"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelError(f"{path}: malformed engine metadata ({error})") from error
    return key, document


def read_verified_engine(
    engine_path: str | Path, key: EngineKey, ignore: tuple[str, ...] = ()
) -> tuple[bytes | None, str]:
    """Read an engine only if its metadata matches ``key`` and its bytes.

    :param ignore: key fields not to compare (e.g. ``("onnx_sha256",)`` for an engine
        given without its ONNX).
    :return: ``(data, "")`` when usable, else ``(None, reason)``.
    """
    engine_path = Path(engine_path)
    if not engine_path.is_file():
        return None, f"no engine at {engine_path}"
    try:
        found_key, document = read_metadata(engine_path)
    except ModelError as error:
        return None, str(error)
    differences = key.mismatches(found_key, ignore=ignore)
    if differences:
        return None, f"{engine_path.name} was built for another setup ({'; '.join(differences)})"
    try:
        data = engine_path.read_bytes()
    except OSError as error:
        return None, f"cannot read {engine_path} ({error})"
    if len(data) != document["engine_bytes"] or sha256_bytes(data) != document["engine_sha256"]:
        return None, f"{engine_path.name} does not match its metadata (truncated or replaced)"
    return data, ""


def ensure_engine(
    engine_path: str | Path,
    key: EngineKey,
    build: Callable[[], bytes],
    *,
    rebuild: bool = False,
    extra_metadata: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> EngineResult:
    """Return a valid engine for ``key`` at ``engine_path``, building it if needed.

    Concurrent callers (the node and an install-time ``build_only``) are serialized by
    a lock file, and the second one reuses the first one's engine.

    :param build: returns the serialized engine; called at most once, under the lock.
    :param rebuild: build even if a valid engine is cached.
    :param extra_metadata: more fields for the metadata document (build settings).
    :param progress: receives one-line progress messages (default: INFO log).
    :raises BackendError: ``build`` returned nothing.
    :raises OSError: the cache folder is not writable.
    """
    engine_path = Path(engine_path)
    report = progress or LOGGER.info
    if not rebuild:
        data, reason = read_verified_engine(engine_path, key)
        if data is not None:
            report(f"using cached engine {engine_path}")
            return EngineResult(engine_path, data, built=False)
    else:
        reason = "rebuild requested"
    with _exclusive_lock(engine_path, report):
        if not rebuild:  # another process may have built it while this one waited
            data, reason = read_verified_engine(engine_path, key)
            if data is not None:
                report(f"using engine {engine_path} just built by another process")
                return EngineResult(engine_path, data, built=False)
        remove_stale_temp_files(engine_path)
        report(f"building TensorRT engine {engine_path.name} ({reason}); this takes minutes")
        # From here a crash leaves no metadata, so the next start rebuilds.
        metadata_path(engine_path).unlink(missing_ok=True)
        started = time.monotonic()
        data = bytes(build())
        if not data:
            raise BackendError(f"the engine build for {engine_path.name} produced nothing")
        seconds = time.monotonic() - started
        atomic_write_bytes(engine_path, data)
        document = engine_metadata(
            key,
            data,
            build_seconds=round(seconds, 1),
            built_at=time.time(),
            **(extra_metadata or {}),
        )
        atomic_write_json(metadata_path(engine_path), document)
        report(f"engine {engine_path} written ({len(data) / 2**20:.1f} MiB, {seconds:.0f} s)")
    return EngineResult(engine_path, data, built=True, reason=reason)


@contextlib.contextmanager
def _exclusive_lock(engine_path: Path, report: Progress) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<engine>.lock`` (released if the process dies)."""
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = engine_path.with_name(engine_path.name + ".lock")
    with open(lock_path, "a+b") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            report(f"waiting for another process that is building {engine_path.name}")
            fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
