"""Remove the Fast DDS shared-memory files that a crashed process left in ``/dev/shm``.

Fast DDS's shared-memory transport keeps, per participant, a data segment
``fastdds_<16 characters>`` (``fastrtps_`` before Fast DDS 3) with a lock file (``_el`` or
``_sl`` appended) that its owner holds locked (``flock``) while it is alive. A process
killed with SIGKILL never removes them: with this package's large-image profile that is
64 MB of RAM per crashed run, never reclaimed until reboot. A lock file nobody holds
therefore marks the segment of a dead owner; segments whose lock is held are never touched.

Only data segments are removed: their names are random and never reused. Port files
(``fastdds_port<N>``) are small, are reused by number by the next participant (which
Fast DDS itself checks and recovers), so removing them could race a process starting
right now. ``fastdds shm clean`` (Fast DDS's own tool) also removes zombie ports, by hand;
the node runs :func:`remove_stale_segments` at start-up so a car never accumulates segments.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

LOGGER = logging.getLogger(__name__)

SHM_DIR = Path("/dev/shm")
_SEGMENT_LOCK = re.compile(r"^(fastdds|fastrtps)_[0-9a-z]{16}_(el|sl)$")


@dataclass(frozen=True)
class CleanupReport:
    """What :func:`remove_stale_segments` found.

    :param removed: files removed (segments and their lock files).
    :param in_use: lock files held by a live process (left alone).
    :param freed_bytes: size of the removed files.
    """

    removed: tuple[Path, ...]
    in_use: int
    freed_bytes: int


def lock_is_held(path: Path) -> bool:
    """Whether another process holds a ``flock`` on ``path`` (its owner is alive).

    :param path: a Fast DDS lock file.
    :return: True when locked, or when it cannot be opened (then it is not ours to judge).
    """
    try:
        with open(path, "rb") as stream:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(stream, fcntl.LOCK_UN)
    except OSError:
        return True
    return False


def remove_stale_segments(directory: Path = SHM_DIR) -> CleanupReport:
    """Remove Fast DDS data segments whose owner process is dead.

    :param directory: the shared-memory folder (``/dev/shm`` on Linux).
    :return: what was removed and how many are in use.
    """
    try:
        names = sorted(os.listdir(directory))
    except OSError:  # no /dev/shm (macOS, containers without it): nothing to clean
        return CleanupReport((), 0, 0)
    removed: list[Path] = []
    in_use = freed = 0
    for name in names:
        if not _SEGMENT_LOCK.match(name):
            continue
        lock = directory / name
        if lock_is_held(lock):
            in_use += 1
            continue
        for path in (directory / name[:-3], lock):  # the segment first, then its lock
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as error:  # another user's file: leave it, say why
                LOGGER.debug("cannot remove stale %s: %s", path, error)
                continue
            removed.append(path)
            freed += size
    return CleanupReport(tuple(removed), in_use, freed)
