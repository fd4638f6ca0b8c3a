"""OODMC: an offline anomaly scorer from Monte-Carlo-dropout logit moments (COCO-DAG paper).

For each frame the segmentation network runs ``passes`` times with its dropout layers
active (BatchNorm stays in inference mode). Per pixel and class, the mean of the T logits
and their central moments of order 2…``order`` are features, plus the entropy of the mean
softmax; a scikit-learn classifier (logistic regression or a linear SVM, on standardised
features) fitted on labelled pixels turns them into an anomaly score.

Cost: ``passes`` full forward passes per frame (16× the network alone) plus the moment
computation at the decoder resolution; far too slow for the car, meant for offline
comparison. ``benchmarks``-style figures are in ``docs/evaluation.md``.

torch is imported when a scorer is created, never at module import.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from anomaly_seg_ros.errors import ConfigError, InputError
from anomaly_seg_ros.evaluation.pixel_metrics import ExactPixelEvaluator, PixelMetrics
from anomaly_seg_ros.optional import require

LOGGER = logging.getLogger(__name__)

CLASSIFIERS = ("logistic", "svm")


@dataclass(frozen=True)
class OODMCConfig:
    """:param passes: stochastic forward passes T. :param order: highest moment N.
    :param classifier: ``logistic`` or ``svm``. :param max_train_pixels: pixels sampled
    (half anomalous when possible) to fit. :param seed: dropout masks and sampling."""

    passes: int = 16
    order: int = 2
    classifier: str = "logistic"
    max_train_pixels: int = 200_000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.passes < 2 or not 1 <= self.order <= 6:
            raise ConfigError(f"passes {self.passes} must be >= 2 and order {self.order} in 1..6")
        if self.classifier not in CLASSIFIERS:
            raise ConfigError(f"classifier {self.classifier!r}; valid: {', '.join(CLASSIFIERS)}")


class OODMCScorer:
    """MC-dropout moment features + a fitted classifier.

    :param network: a torch segmentation network of this package (``forward`` returns
        (B, C, h, w) logits at the decoder resolution) containing dropout layers.
    :param input_size: (H, W) the network sees; frames are resized to it.
    :param mean: per-channel normalisation mean (RGB, 0..1 scale).
    :param std: per-channel normalisation standard deviation.
    :raises ConfigError: the network has no dropout layer (passes would be identical).
    """

    def __init__(
        self,
        network: object,
        input_size: tuple[int, int],
        mean: tuple[float, float, float] = (0.485, 0.456, 0.406),
        std: tuple[float, float, float] = (0.229, 0.224, 0.225),
        config: OODMCConfig | None = None,
    ) -> None:
        import torch

        self.torch = torch
        self.network = network
        self.input_size = input_size
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.config = config or OODMCConfig()
        self.classifier: Any = None  # a fitted scikit-learn pipeline after fit()
        self._dropouts = [
            module
            for module in network.modules()  # type: ignore[attr-defined]
            if isinstance(module, torch.nn.modules.dropout._DropoutNd)
        ]
        if not self._dropouts:
            raise ConfigError("the network has no dropout layer: MC passes would be identical")

    def features(self, rgb: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
        """(H·W, C·N + 1) float32 per-pixel features at ``output_size``."""
        torch = self.torch
        height, width = self.input_size
        resized = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
        normalized = (resized.astype(np.float32) / 255.0 - self.mean) / self.std
        batch = torch.from_numpy(np.ascontiguousarray(normalized.transpose(2, 0, 1)))[None]
        self.network.eval()  # type: ignore[attr-defined]
        for module in self._dropouts:
            module.train()  # dropout active, BatchNorm statistics frozen
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(self.config.seed)
        try:
            with torch.no_grad():
                logits = torch.stack(
                    [self.network(batch)[0] for _ in range(self.config.passes)]  # type: ignore[operator]
                )
        finally:
            torch.random.set_rng_state(generator_state)
            self.network.eval()  # type: ignore[attr-defined]
        mean = logits.mean(dim=0)
        maps = [mean]
        centered = logits - mean
        maps += [centered.pow(k).mean(dim=0) for k in range(2, self.config.order + 1)]
        probabilities = torch.softmax(mean, dim=0)
        entropy = -(probabilities * torch.log(probabilities.clamp_min(1e-12))).sum(dim=0)
        stacked = torch.cat([*maps, entropy[None]], dim=0).numpy().astype(np.float32)
        # Upsample the feature maps (not T logit maps) to the label size: T times cheaper.
        out_height, out_width = output_size
        upsampled = [
            cv2.resize(plane, (out_width, out_height), interpolation=cv2.INTER_LINEAR)
            for plane in stacked
        ]
        return np.stack(upsampled, axis=-1).reshape(out_height * out_width, -1)

    def fit(self, frames: Iterable[tuple[np.ndarray, np.ndarray]]) -> OODMCScorer:
        """Fit the classifier on labelled (RGB, 0/1/255 label) frames.

        :raises InputError: the frames hold no anomalous or no normal pixels.
        """
        require("sklearn", "OODMC's classifier")
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVC

        features, targets = [], []
        for rgb, label in frames:
            valid = label.ravel() != 255
            features.append(self.features(rgb, label.shape)[valid])
            targets.append(label.ravel()[valid])
        x, y = np.concatenate(features), np.concatenate(targets)
        if not (y == 1).any() or not (y == 0).any():
            raise InputError("OODMC needs anomalous and in-distribution pixels to fit")
        chosen = self._balanced_sample(y)
        model = (
            LogisticRegression(max_iter=1000, class_weight="balanced")
            if self.config.classifier == "logistic"
            else LinearSVC(class_weight="balanced", random_state=self.config.seed)
        )
        self.classifier = make_pipeline(StandardScaler(), model).fit(x[chosen], y[chosen])
        return self

    def _balanced_sample(self, y: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(self.config.seed)
        budget = self.config.max_train_pixels
        chosen: list[np.ndarray] = []
        for value in (1, 0):
            index = np.flatnonzero(y == value)
            taken = sum(len(part) for part in chosen)
            take = min(len(index), budget // 2 if value == 1 else budget - taken)
            chosen.append(np.sort(rng.choice(index, size=take, replace=False)))
        return np.concatenate(chosen)

    def score(self, rgb: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
        """(H, W) float32 anomaly score (classifier decision value; higher = anomalous).

        :raises ConfigError: :meth:`fit` was not called.
        """
        if self.classifier is None:
            raise ConfigError("fit the OODMC classifier on a labelled split before scoring")
        decision = self.classifier.decision_function(self.features(rgb, output_size))
        return decision.astype(np.float32).reshape(output_size)


def evaluate_oodmc(
    scorer: OODMCScorer, frames: Iterable[tuple[np.ndarray, np.ndarray]]
) -> tuple[PixelMetrics, float]:
    """Exact pixel metrics of the fitted scorer, and its mean seconds per frame."""
    evaluator = ExactPixelEvaluator()
    elapsed, count = 0.0, 0
    for rgb, label in frames:
        start = time.perf_counter()
        score = scorer.score(rgb, label.shape)
        elapsed += time.perf_counter() - start
        count += 1
        evaluator.process(score, label)
    return evaluator.evaluate(), elapsed / max(count, 1)
