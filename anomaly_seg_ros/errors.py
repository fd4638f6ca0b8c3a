"""Exceptions raised by the package; each message says what is wrong and what to do."""

#: Longest quoted input value an error message shows (an encoding string is free text
#: from the sender: a 100 KB one must not become a 100 KB log line).
QUOTE_LIMIT = 64


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` of at most ``limit`` characters of it (``...`` after the closing
    quote when cut), for messages."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}..."
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class AnomalySegError(Exception):
    """Base class of every error this package raises on purpose."""


class ModelError(AnomalySegError):
    """A model file (ONNX, engine, checkpoint, sidecar, SML statistics) is missing or wrong."""


class InputError(AnomalySegError, ValueError):
    """An input image or array has the wrong type, shape or content."""


class ConfigError(AnomalySegError, ValueError):
    """A configuration value is out of range or unknown."""


class BackendError(AnomalySegError):
    """An inference backend is unavailable or failed."""


class OutputError(AnomalySegError):
    """An output could not be written (full disk, no permission); nothing partial is left."""


class DependencyError(AnomalySegError, ImportError):
    """An optional package that a feature needs is not installed; the message says how to
    install it (see :mod:`anomaly_seg_ros.optional`)."""
