"""The core's central data: the graph's input and output names and the logit summary.

Every part that produces or consumes the exported graph's outputs (backends, scores,
refinement, deployment checks, evaluation, export) imports them from here; this module
depends on numpy alone, so importing it pulls in no backend, runtime or sidecar code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Names of the graph's input and outputs (the logit summary), in this order.
INPUT_NAME = "image"
OUTPUT_NAMES = ("label", "max_logit", "min_logit", "logsumexp", "entropy")
#: The extra output of a graph exported with its refinement (see ``graph_refinement``).
REFINED_SCORE_NAME = "refined_score"


@dataclass(frozen=True)
class LogitSummary:
    """Per-pixel summary of the C class logits, at the network input size.

    All maps are (H, W): ``label`` uint8 (argmax train ID), the others float32.
    ``entropy`` is the softmax entropy in nats. ``refined_score`` (float32) only from a
    graph exported with its refinement (see :mod:`anomaly_seg_ros.model.graph_refinement`).
    """

    label: np.ndarray
    max_logit: np.ndarray
    min_logit: np.ndarray
    logsumexp: np.ndarray
    entropy: np.ndarray
    refined_score: np.ndarray | None = None

    @classmethod
    def from_outputs(cls, outputs: dict[str, np.ndarray]) -> LogitSummary:
        """Build from a name → array mapping, squeezing batch/channel axes of size 1.

        :param outputs: one array per name of :data:`OUTPUT_NAMES`, and optionally
            :data:`REFINED_SCORE_NAME`.
        :return: the summary, ``label`` as uint8 and the other maps as float32.
        :raises KeyError: an output is missing.
        """
        maps = {}
        for name in (*OUTPUT_NAMES, REFINED_SCORE_NAME):
            if name == REFINED_SCORE_NAME and name not in outputs:
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
        """(H, W) of the maps."""
        return self.label.shape
