"""The one evaluator interface (``reset / process / evaluate``) and a composite of them.

Every metric of the toolkit (exact and binned pixel metrics, the segmentation confusion
matrix, component metrics) is an :class:`Evaluator`: ``process`` adds one frame's
prediction against its ground truth, ``evaluate`` reads the result over every frame since
``reset``. :class:`EvaluatorGroup` runs named evaluators side by side, each on its own
prediction against the frame's shared ground truth (e.g. one per anomaly score). Create
them by name with :func:`anomaly_seg_ros.evaluation.factory.create_evaluator`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

import numpy as np

from anomaly_seg_ros.errors import InputError

ResultT = TypeVar("ResultT")


class Evaluator(abc.ABC, Generic[ResultT]):
    """Accumulates one metric over frames."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget every processed frame."""

    @abc.abstractmethod
    def process(self, prediction: np.ndarray, target: np.ndarray) -> object:
        """Add one frame.

        :param prediction: (H, W) what the model produced (a score or a label map).
        :param target: (H, W) the ground truth of the same frame.
        :return: per-frame details where the evaluator has them, else None.
        :raises InputError: the maps do not fit each other or the metric.
        """

    @abc.abstractmethod
    def evaluate(self) -> ResultT:
        """The metric over every frame processed since :meth:`reset`."""


class EvaluatorGroup(Evaluator[dict[str, ResultT]]):
    """Named evaluators fed together; ``evaluate`` returns their results by name.

    :param evaluators: name → evaluator (e.g. anomaly-score name → pixel evaluator).
    """

    def __init__(self, evaluators: Mapping[str, Evaluator[ResultT]]) -> None:
        self.evaluators = dict(evaluators)

    def __getitem__(self, name: str) -> Evaluator[ResultT]:
        return self.evaluators[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.evaluators)

    def reset(self) -> None:
        """Reset every member."""
        for evaluator in self.evaluators.values():
            evaluator.reset()

    def process(
        self, prediction: np.ndarray | Mapping[str, np.ndarray], target: np.ndarray
    ) -> None:
        """Add one frame to every member.

        :param prediction: one map for all members, or name → map with one per member.
        :param target: the frame's ground truth, shared by all members.
        :raises InputError: a member's map is missing, or see the members' ``process``.
        """
        for name, evaluator in self.evaluators.items():
            if isinstance(prediction, Mapping):
                if name not in prediction:
                    raise InputError(
                        f"no prediction for evaluator {name!r}; "
                        f"the frame has {', '.join(prediction) or 'none'}"
                    )
                evaluator.process(prediction[name], target)
            else:
                evaluator.process(prediction, target)

    def evaluate(self) -> dict[str, ResultT]:
        """Each member's result, in the order the members were given."""
        return {name: evaluator.evaluate() for name, evaluator in self.evaluators.items()}
