"""Optional packages: what the evaluation tools use beyond the node's runtime.

The node and ``anomaly-seg detect`` need none of these. ``anomaly-seg evaluate`` and
``bag evaluate`` draw their figures with matplotlib and write every table without it;
OODMC fits its classifier with scikit-learn. When one is missing, the feature says so in
one line that names the package and how to install it (:func:`install_hint`).
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType

from anomaly_seg_ros.errors import DependencyError

LOGGER = logging.getLogger(__name__)

#: import name → (PyPI name, Debian/Ubuntu package = rosdep key)
PACKAGES: dict[str, tuple[str, str]] = {
    "matplotlib": ("matplotlib", "python3-matplotlib"),
    "sklearn": ("scikit-learn", "python3-sklearn"),
}

_warned: set[str] = set()


def install_hint(module: str) -> str:
    """```pip install X` (or `sudo apt install python3-x`)`` for an import name."""
    pip_name, apt_name = PACKAGES[module]
    return f"`pip install {pip_name}` (or `sudo apt install {apt_name}`)"


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` for ``purpose``.

    :raises DependencyError: it is not installed; the message says how to install it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise DependencyError(
            f"{purpose} needs {PACKAGES[module][0]}, which is not installed: "
            f"{install_hint(module)}"
        ) from error


def optional(module: str, skipped: str) -> ModuleType | None:
    """Import ``module``, or None after one warning (once per process) saying what is
    ``skipped`` without it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if module not in _warned:
            _warned.add(module)
            LOGGER.warning(
                "%s not installed: %s skipped; install it with %s",
                PACKAGES[module][0],
                skipped,
                install_hint(module),
            )
        return None
