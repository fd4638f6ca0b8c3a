"""The one small interface every inference backend implements."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from anomaly_seg_ros.errors import InputError, ModelError
from anomaly_seg_ros.model.sidecar import ModelInfo
from anomaly_seg_ros.model.summary import LogitSummary


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
        return f"{self.name} ({self.info.precision_label})"

    def check_output_shapes(self, shapes: Mapping[str, Sequence[object]], source: str) -> None:
        """Refuse, at start, a graph whose outputs are not maps of the input size.

        :param shapes: output name -> shape as the graph or engine declares it; symbolic
            dimensions (names, None, -1) are accepted.
        :param source: the model file, for the message.
        :raises ModelError: naming the output, its shape and the expected one.
        """
        height, width = self.info.input_height, self.info.input_width
        for name, shape in shapes.items():
            dims = list(shape)
            while len(dims) > 2 and dims[0] == 1:
                dims = dims[1:]
            fixed = [d if isinstance(d, int) and d >= 0 else None for d in dims]
            fits = len(fixed) == 2 and all(
                d is None or d == wanted for d, wanted in zip(fixed, (height, width))
            )
            if not fits:
                raise ModelError(
                    f"{source}: graph output {name!r} has shape {list(shape)}, expected "
                    f"[1, {height}, {width}] (the input size; leading 1s optional): the "
                    "graph is not an anomaly_seg_ros export for this input size"
                )

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
