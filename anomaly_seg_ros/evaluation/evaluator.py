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

    def merge(self, other: Evaluator[ResultT]) -> None:
        """Add every frame ``other`` processed, as if this evaluator had processed them.

        Evaluators that keep mergeable state (e.g. one per bag on a worker) override this;
        frames of ``other`` count after this evaluator's own.

        :raises InputError: ``other`` is of another kind or was set up differently.
        """
        raise InputError(f"{type(self).__name__} cannot merge another evaluator's frames")

    def _check_mergeable(self, other: Evaluator[ResultT], *settings: str) -> None:
        """:raises InputError: ``other`` is not of this type or differs in ``settings``."""
        if type(other) is not type(self):
            raise InputError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        for name in settings:
            mine, theirs = getattr(self, name), getattr(other, name)
            if not np.array_equal(mine, theirs):
                raise InputError(f"cannot merge evaluators with {name} {theirs!r} and {mine!r}")


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
