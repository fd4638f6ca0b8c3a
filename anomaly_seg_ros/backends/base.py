"""The one small interface every inference backend implements."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.model_info import OUTPUT_NAMES, REFINED_SCORE_NAME, ModelInfo


@dataclass(frozen=True)
class LogitSummary:
    """Per-pixel summary of the C class logits, at the network input size.

    All maps are (H, W): ``label`` uint8 (argmax train ID), the others float32.
    ``entropy`` is the softmax entropy in nats. ``refined_score`` (float32) only from a
    graph exported with its refinement (see :mod:`anomaly_seg_ros.graph_refinement`).
    """

    label: np.ndarray
    max_logit: np.ndarray
    min_logit: np.ndarray
    logsumexp: np.ndarray
    entropy: np.ndarray
    refined_score: np.ndarray | None = None

    @classmethod
    def from_outputs(cls, outputs: dict[str, np.ndarray]) -> LogitSummary:
        """Build from a name → array mapping, squeezing batch/channel axes of size 1."""
        maps = {}
        for name in (*OUTPUT_NAMES, REFINED_SCORE_NAME):
            if name not in outputs and name == REFINED_SCORE_NAME:
                continue
            array = np.asarray(outputs[name])
            while array.ndim > 2 and array.shape[0] == 1:
                array = array[0]
            maps[name] = array
        label = maps.pop("label")
        if label.dtype != np.uint8:
            label = label.astype(np.uint8)
        floats = {
            name: array if array.dtype == np.float32 else array.astype(np.float32)
            for name, array in maps.items()
        }
        return cls(label=label, **floats)

    @property
    def shape(self) -> tuple[int, int]:
        return self.label.shape  # type: ignore[return-value]


class InferenceBackend(abc.ABC):
    """Runs the exported graph: normalized NCHW float32 image in, logit summary out."""

    #: short name, as used by the ``backend`` parameter
    name: str = "base"

    def __init__(self, info: ModelInfo, model_path: Path) -> None:
        self.info = info
        self.model_path = model_path

    @abc.abstractmethod
    def infer(self, image: np.ndarray) -> LogitSummary:
        """Run one frame.

        :param image: (1, 3, H, W) float32, normalized, H×W = the model input size.
        :return: the logit summary at (H, W).
        """

    def input_buffer(self) -> np.ndarray | None:
        """An array :meth:`infer` reads in place (e.g. pinned memory), or None.

        The Detector preprocesses straight into it when it is a C-contiguous float32 array
        of the input shape, saving a host copy per frame, and holds a lock from
        preprocessing to the end of :meth:`infer` since the array is shared.
        """
        return None

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release device memory and sessions; the backend is unusable afterwards."""

    def describe(self) -> str:
        """One line for logs and diagnostics: backend, device, precision."""
        return f"{self.name} ({self.info.precision})"

    def check_input(self, image: np.ndarray) -> None:
        """Raise :class:`InputError` unless ``image`` has the shape and dtype of the graph."""
        expected = (1, 3, self.info.input_height, self.info.input_width)
        if not isinstance(image, np.ndarray) or image.dtype != np.float32:
            raise InputError(f"backend input must be a float32 ndarray, got {type(image)}")
        if image.shape != expected:
            raise InputError(f"backend input shape {image.shape} != model input {expected}")

    def __enter__(self) -> InferenceBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
