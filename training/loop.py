"""The one training loop of the package: a stream of batches, one step per batch, hooks.

Supervised training (:mod:`training.train`) and anomaly fine-tuning
(:mod:`training.finetune`) both run it; what differs lives in their step function and in
their hooks (logging, validation, checkpoints, per-epoch evaluation and state files), as in
detectron2's ``TrainerBase``. The loop calls ``before_train`` once, ``after_step`` after
every step (``loop.iteration`` already counted, ``loop.last`` holding what the step
returned) and ``after_train`` once, on each hook in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

Batch = TypeVar("Batch")
#: The loop a hook works on: :class:`Loop` or a subclass with more state (``Trainer``).
LoopT = TypeVar("LoopT", bound="Loop[Any]", contravariant=True)


class Hook(Generic[LoopT]):
    """Base class: override what you need; a hook reads what it needs from the loop."""

    def before_train(self, loop: LoopT) -> None:
        """Called once before the first step."""

    def after_step(self, loop: LoopT) -> None:
        """Called after every optimisation step."""

    def after_train(self, loop: LoopT) -> None:
        """Called once after the last step."""


class Loop(Generic[Batch]):
    """Runs a step function over a batch stream until the schedule is done.

    :param total_iterations: steps of the whole schedule.
    :param hooks: called in order around the steps.
    :param iteration: steps already done (a resumed run).
    :param elapsed: seconds already spent (a resumed run).
    """

    def __init__(
        self,
        total_iterations: int,
        hooks: Sequence[Hook[Any]],
        iteration: int = 0,
        elapsed: float = 0.0,
    ) -> None:
        self.total_iterations = total_iterations
        self.hooks = list(hooks)
        self.iteration, self.elapsed = iteration, elapsed
        self.last: Mapping[str, float] = {}
        self.finished = False

    @property
    def progress(self) -> float:
        """Fraction of the schedule done (subclasses may also count wall time)."""
        return min(self.iteration / max(1, self.total_iterations), 1.0)

    def clock(self, seconds: float) -> float:
        """The elapsed time every process agrees on (one process: ``seconds`` itself)."""
        return seconds

    def run(self, batches: Iterator[Batch], step: Callable[[Batch], Mapping[str, float]]) -> None:
        """Step until :attr:`progress` reaches 1, calling the hooks."""
        for hook in self.hooks:
            hook.before_train(self)
        started = time.monotonic() - self.elapsed
        while self.progress < 1.0:
            self.last = step(next(batches))
            self.iteration += 1
            self.elapsed = self.clock(time.monotonic() - started)
            self.finished = self.progress >= 1.0
            for hook in self.hooks:
                hook.after_step(self)
        self.finished = True
        for hook in self.hooks:
            hook.after_train(self)
