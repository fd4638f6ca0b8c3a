"""The bags of a fleet evaluation: paths, folders and globs; their content hashes; the cache.

Bags are rosbag2 folders (``metadata.yaml`` with sqlite3 or MCAP storage) and ROS 1
``.bag`` files. Each bag is named by its folder or file name, which must be unique: the
report and the cache are keyed by it.

The per-bag cache holds each bag's pass-1 and pass-2 results (:mod:`~anomaly_seg_ros.
evaluation.fleet_worker`) under a key of the bag's content (SHA-256 of every file), the
model (files and settings) and the evaluation settings, written atomically; a rerun (a
killed run, more bags added) reads them instead of evaluating those bags again.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import pickle
from collections.abc import Sequence
from pathlib import Path

from anomaly_seg_ros.atomic import atomic_write_bytes
from anomaly_seg_ros.errors import InputError

LOGGER = logging.getLogger(__name__)

_GLOB_CHARS = frozenset("*?[")


def is_bag(path: Path) -> bool:
    """A rosbag2 folder (with ``metadata.yaml``) or a ROS 1 ``.bag`` file."""
    return (path.is_dir() and (path / "metadata.yaml").is_file()) or (
        path.is_file() and path.suffix == ".bag"
    )


def find_bags(inputs: Sequence[str | Path]) -> list[Path]:
    """Every bag named by ``inputs``: bags, folders holding bags (at any depth), globs.

    :return: the bags, sorted by name, each once.
    :raises InputError: an input does not exist, is not a bag, is a folder without bags or
        a glob that matches none; or two bags share a name.
    """
    found: dict[Path, None] = {}
    for item in inputs:
        text = str(item)
        if _GLOB_CHARS & set(text):
            matches = [Path(match) for match in sorted(glob.glob(text, recursive=True))]
            if not matches:
                raise InputError(f"glob {text!r} matches nothing")
            bags = [path for path in matches if is_bag(path)]
            if not bags:
                raise InputError(f"glob {text!r} matches {len(matches)} paths but no bag")
        else:
            path = Path(text)
            if not path.exists():
                raise InputError(f"bag {path} does not exist")
            if is_bag(path):
                bags = [path]
            elif path.is_dir():
                bags = _bags_in(path)
                if not bags:
                    raise InputError(
                        f"folder {path} holds no bags (rosbag2 folders with metadata.yaml, "
                        "ROS 1 .bag files)"
                    )
            else:
                raise InputError(f"{path} is not a bag (a rosbag2 folder or a ROS 1 .bag file)")
        found.update((bag.resolve(), None) for bag in bags)
    by_name: dict[str, Path] = {}
    for bag in found:
        other = by_name.setdefault(bag.name, bag)
        if other != bag:
            raise InputError(
                f"two bags are named {bag.name}: {other} and {bag}; the report and the cache "
                "are keyed by bag name, so rename one (or copy it under another name)"
            )
    return sorted(found, key=lambda bag: bag.name)


def _bags_in(folder: Path) -> list[Path]:
    bags = {meta.parent for meta in folder.rglob("metadata.yaml")}
    bags.update(path for path in folder.rglob("*.bag") if path.is_file())
    # Files inside a rosbag2 folder are that bag's, not bags of their own.
    return sorted(bag for bag in bags if not any(p in bags for p in bag.parents))


def bag_digest(bag: Path) -> str:
    """SHA-256 of a bag's content: every file's relative name and bytes, in name order."""
    digest = hashlib.sha256()
    files = sorted(p for p in bag.rglob("*") if p.is_file()) if bag.is_dir() else [bag]
    for path in files:
        name = path.relative_to(bag).as_posix() if bag.is_dir() else path.name
        digest.update(name.encode() + b"\0")
        with open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def cache_key(bag: Path, *parts: str) -> str:
    """Key of a bag's results: its content with the model and settings ``parts``."""
    digest = hashlib.sha256(bag_digest(bag).encode())
    for part in parts:
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()[:32]


class ResultCache:
    """Per-bag results on disk: ``<folder>/<bag name>.<key>.<kind>.pkl``, written atomically.

    Pickle, as Ray ships the same objects; the folder is this tool's own output, so only
    what the tool wrote is read back.

    :param folder: the cache folder (created on first write); None caches nothing.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def _path(self, name: str, key: str, kind: str) -> Path | None:
        return self.folder / f"{name}.{key}.{kind}.pkl" if self.folder else None

    def load(self, name: str, key: str, kind: str) -> object | None:
        """The cached object, or None (missing or unreadable: evaluated again)."""
        path = self._path(name, key, kind)
        if path is None or not path.is_file():
            return None
        try:
            value: object = pickle.loads(path.read_bytes())
            return value
        except Exception as error:  # a truncated or foreign file: evaluate the bag again
            LOGGER.warning("cache file %s unreadable (%s); evaluating %s again", path, error, name)
            return None

    def save(self, name: str, key: str, kind: str, value: object) -> None:
        """Write ``value`` (to a temporary name, renamed when complete)."""
        path = self._path(name, key, kind)
        if path is not None:
            atomic_write_bytes(path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
