"""A C function of a shared library through ctypes, or None where it cannot be had.

Imports nothing but ctypes: :mod:`anomaly_seg_ros.ros.allocator` uses it before the node's
heavy imports.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from typing import Any


def c_function(
    library: str, name: str, argtypes: Sequence[Any], restype: Any
) -> Callable[..., Any] | None:
    """``name`` of ``library`` with its argument and result types set.

    :param library: a path or a name ``ctypes.CDLL`` loads.
    :param name: the function's symbol.
    :param argtypes: its ctypes argument types.
    :param restype: its ctypes result type.
    :return: the function, or None when the library does not load or lacks the symbol.
    """
    try:
        function = getattr(ctypes.CDLL(library), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = tuple(argtypes)
    function.restype = restype
    return function  # type: ignore[no-any-return]
