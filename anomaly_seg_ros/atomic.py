"""Crash-safe file writes: a temporary file in the target's folder, then ``os.replace``.

A TensorRT engine takes minutes to build and is loaded on every start, so a half-written
file must never sit under the final name. Writing into a temporary file in the *same*
folder keeps ``os.replace`` a single atomic rename on the same file system: a reader sees
either the old complete file or the new complete file. A process killed mid-write leaves
only a ``.<name>.*.tmp`` file behind, which :func:`remove_stale_temp_files` clears later.
:func:`atomic_folder` does the same for a folder of files (a bag, a report).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

LOGGER = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
#: Mode of every file written here: owner read/write, everyone else read.
FILE_MODE = 0o644


def temp_prefix(target: Path) -> str:
    """Prefix of the temporary files that belong to ``target`` (hidden, same folder)."""
    return f".{target.name}."


def atomic_write(target: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``target`` through ``write(file)`` so that it appears complete or not at all.

    :param target: final path; its folder is created if missing.
    :param write: writes the content into the open binary file it is given.
    :return: ``target`` as a Path.
    :raises OSError: the folder is not writable or the disk is full; the target is
        untouched and the temporary file removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(
        prefix=temp_prefix(target), suffix=TEMP_SUFFIX, dir=target.parent
    )
    temp_path = Path(temp_name)
    try:
        with os.fdopen(descriptor, "wb") as temp_file:
            write(temp_file)
            temp_file.flush()
            # Data must be on disk before the rename, or a power cut can leave the new
            # name pointing at an empty file (ext4 delayed allocation).
            os.fsync(temp_file.fileno())
        # mkstemp creates the file 0600; an engine built at install time (root) must stay
        # readable by the user the node runs as. (Reading the umask would mean setting it,
        # which races with other threads, so the mode is fixed.)
        os.chmod(temp_path, FILE_MODE)
        os.replace(temp_path, target)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)
    return target


def atomic_write_bytes(target: str | Path, data: bytes | bytearray | memoryview) -> Path:
    """:func:`atomic_write` of a bytes-like object (e.g. a serialized engine)."""

    def write(temp_file: BinaryIO) -> None:
        temp_file.write(data)

    return atomic_write(target, write)


def atomic_write_json(target: str | Path, data: dict[str, Any]) -> Path:
    """:func:`atomic_write` of ``data`` as indented UTF-8 JSON with a final newline."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_files(files: Mapping[Path, bytes]) -> list[Path]:
    """Write several files that belong together (one frame's outputs): all appear, or none.

    Every file is written and synced under a temporary name first; only when all are
    written are they renamed, so a full disk or a read-only folder half-way leaves none of
    them (and no temporary file).

    :param files: final path -> content.
    :return: the paths written.
    :raises OSError: a write failed; no target was touched.
    """
    temporaries: dict[Path, Path] = {}
    try:
        for target, content in files.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            descriptor, temp_name = tempfile.mkstemp(
                prefix=temp_prefix(target), suffix=TEMP_SUFFIX, dir=target.parent
            )
            temporaries[target] = Path(temp_name)
            with os.fdopen(descriptor, "wb") as temp_file:
                temp_file.write(content)
                temp_file.flush()
                os.fsync(temp_file.fileno())
            os.chmod(temp_name, FILE_MODE)
        for target, temp_path in temporaries.items():
            os.replace(temp_path, target)
    except BaseException:
        for temp_path in temporaries.values():
            temp_path.unlink(missing_ok=True)
        raise
    for folder in {target.parent for target in files}:
        _fsync_folder(folder)
    return list(files)


#: The suffix of :func:`partial_folder` names before the host name and process id.
PARTIAL_MARK = ".partial-"


def partial_folder(target: Path) -> Path:
    """The hidden name beside ``target`` that :func:`atomic_folder` writes under: it names
    the host and process writing it, so a later run can tell a dead run's leftovers."""
    return target.with_name(f".{target.name}{PARTIAL_MARK}{socket.gethostname()}-{os.getpid()}")


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (of any user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def remove_stale_partials(folder: Path) -> list[Path]:
    """Remove the partial folders in ``folder`` that processes now dead left (a killed
    ``bag run`` or report), like the node does for dead processes' shared memory.

    Only partials of this host whose process no longer exists are removed: a run in
    progress, or one on another machine sharing the folder, keeps its partial.

    :return: the removed paths.
    """
    removed = []
    prefix = f"{PARTIAL_MARK}{socket.gethostname()}-"
    for candidate in folder.glob(f".*{prefix}*"):
        owner = candidate.name.rpartition(prefix)[2]
        if owner.isdigit() and not process_alive(int(owner)) and candidate.is_dir():
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    if removed:
        LOGGER.warning(
            "removed %d unfinished output folder(s) of runs that were killed: %s",
            len(removed),
            ", ".join(path.name for path in removed),
        )
    return removed


@contextmanager
def atomic_folder(target: str | Path, keep_name: bool = False) -> Iterator[Path]:
    """A folder that appears under ``target`` complete, or not at all.

    The block receives a temporary path (not yet created: the caller makes it, e.g.
    ``mkdir`` or a bag writer that insists on a new path); when the block ends without an
    error it is renamed to ``target``, else it is removed with everything in it, so a
    failed or interrupted run leaves nothing that looks complete.

    :param target: the folder to create; it must not exist.
    :param keep_name: False: the temporary path is the hidden name beside ``target``.
        True: it is ``target.name`` inside that hidden folder, for writers that name
        their files after their folder (a rosbag2 writer's ``<bag>.mcap``), so the
        finished folder holds no temporary names.
    :return: (context manager) the temporary path to fill.
    :raises FileExistsError: ``target`` exists.
    :raises OSError: the rename failed (the temporary folder is removed).
    """
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"{target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(target.parent)
    partial = partial_folder(target)
    shutil.rmtree(partial, ignore_errors=True)
    filled = partial / target.name if keep_name else partial
    try:
        if keep_name:
            partial.mkdir()
        yield filled
        filled.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if keep_name:
        partial.rmdir()
    _fsync_folder(target.parent)


def remove_stale_temp_files(target: str | Path, older_than_s: float = 0.0) -> list[Path]:
    """Delete temporary files that an interrupted :func:`atomic_write` of ``target`` left.

    :param target: the final path whose leftovers to remove.
    :param older_than_s: only remove files whose last change is at least this old, so a
        write in progress in another process is not pulled from under it.
    :return: the removed paths.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return []
    now = time.time()
    removed = []
    for candidate in target.parent.glob(temp_prefix(target) + "*" + TEMP_SUFFIX):
        try:
            if now - candidate.stat().st_mtime >= older_than_s:
                candidate.unlink()
                removed.append(candidate)
        except FileNotFoundError:
            continue  # another process cleaned it up first
    if removed:
        LOGGER.info("removed %d leftover temporary file(s) of %s", len(removed), target)
    return removed


def _fsync_folder(folder: Path) -> None:
    """Persist the rename itself; best effort (not every file system allows it)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # e.g. some network file systems refuse fsync on folders
    finally:
        os.close(descriptor)
