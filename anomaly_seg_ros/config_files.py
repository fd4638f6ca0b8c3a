"""Settings files: YAML file → dotted ``key=value`` overrides → frozen dataclass.

The one loader behind every settings file of the package and of ``training/``: the ROS 2
parameters files (:func:`anomaly_seg_ros.config.config_from_params_file`), the training
and the fine-tuning configs. Every error is a :class:`ConfigError` of one line that names
the file or the key.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from anomaly_seg_ros.errors import ConfigError

__all__ = [
    "apply_overrides",
    "build_dataclass",
    "load_dataclass",
    "read_yaml",
    "read_yaml_mapping",
]

T = TypeVar("T")


def read_yaml(path: str | os.PathLike[str], what: str) -> Any:
    """Parse one YAML file.

    :param path: the file.
    :param what: what the file is, for the message (``"parameters file"``).
    :return: the document; None for an empty file.
    :raises ConfigError: ``cannot read <what> <path>: <reason>`` (missing, unreadable,
        not UTF-8, not YAML), the reason on one line.
    """
    import yaml  # deferred: the per-frame path never reads a settings file

    try:
        with open(path, encoding="utf-8") as stream:
            return yaml.safe_load(stream)
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as error:
        strerror = error.strerror if isinstance(error, OSError) else None
        reason = strerror or str(error).splitlines()[0]
        raise ConfigError(f"cannot read {what} {path}: {reason}") from error


def read_yaml_mapping(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """Parse a YAML file that must hold a mapping (an empty file is an empty mapping).

    :raises ConfigError: as :func:`read_yaml`, or ``<path> is not a <what>: expected a
        YAML mapping of settings``.
    """
    document = read_yaml(path, what)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path} is not a {what}: expected a YAML mapping of settings")
    return document


def apply_overrides(values: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """``values`` with ``key=value`` overrides applied; dotted keys reach nested mappings.

    Values are parsed as YAML (``lr=1e-3``, ``crop_size=[256,512]``, ``mix=null``).

    :return: a new mapping (``values`` and its nested mappings are not changed).
    :raises ConfigError: an override without ``=`` or key, or a value that is not YAML.
    """
    import yaml

    result = dict(values)
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {override!r} must look like key=value")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            reason = str(error).splitlines()[0]
            raise ConfigError(
                f"override {override!r}: value is not valid YAML ({reason})"
            ) from error
        *parents, leaf = key.strip().split(".")
        target = result
        for parent in parents:
            child = target.get(parent)
            target[parent] = child = dict(child) if isinstance(child, dict) else {}
            target = child
        target[leaf] = value
    return result


def build_dataclass(cls: type[T], values: dict[str, Any], what: str, where: str = "") -> T:
    """Build a (frozen, possibly nested) dataclass from YAML values.

    Lists become tuples; a mapping for a dataclass-typed field is applied to that field's
    default, so that untouched nested settings keep their defaults.

    :param what: the kind of settings, for messages (``"training"``).
    :param where: dotted prefix of ``values`` in the whole document (for messages).
    :raises ConfigError: unknown keys (listing the valid ones) or values ``cls`` rejects.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    known = sorted(item.name for item in dataclasses.fields(cls))
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown {what} setting(s) {[where + key for key in unknown]}; "
            f"valid{' in ' + where.rstrip('.') if where else ''}: {', '.join(known)}"
        )
    defaults = cls() if _has_defaults(cls) else None
    kwargs = {}
    for name, value in values.items():
        nested = [
            kind
            for kind in typing.get_args(hints[name]) or (hints[name],)
            if dataclasses.is_dataclass(kind) and isinstance(kind, type)
        ]
        if isinstance(value, dict) and nested:
            default = getattr(defaults, name, None)
            is_instance = dataclasses.is_dataclass(default) and not isinstance(default, type)
            base = dataclasses.asdict(default) if is_instance else {}  # type: ignore[arg-type]
            value = build_dataclass(nested[0], {**base, **value}, what, f"{where}{name}.")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as error:  # a value of the wrong type reached a comparison
        raise ConfigError(f"invalid {what} settings {where or cls.__name__}: {error}") from error


def load_dataclass(
    cls: type[T], path: str | os.PathLike[str] | None, overrides: Iterable[str], what: str
) -> T:
    """YAML file (optional) → ``key=value`` overrides → frozen ``cls``.

    :param path: YAML mapping of field names to values, or None for the defaults.
    :param what: the kind of settings, for messages (``"training"``: ``cannot read training
        config <path>``, ``unknown training setting(s) ...``).
    :raises ConfigError: as :func:`read_yaml_mapping`, :func:`apply_overrides` and
        :func:`build_dataclass`.
    """
    values = read_yaml_mapping(Path(path), f"{what} config") if path is not None else {}
    return build_dataclass(cls, apply_overrides(values, overrides), what)


def _has_defaults(cls: type) -> bool:
    return all(
        item.default is not dataclasses.MISSING or item.default_factory is not dataclasses.MISSING
        for item in dataclasses.fields(cls)
    )
