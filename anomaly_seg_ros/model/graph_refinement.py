"""Which score and refinement an exported graph computes itself (no torch, no ONNX).

A model exported with the refinement in the graph (``anomaly-seg export --refine-in-graph``,
see :mod:`anomaly_seg_ros.networks.refine_graph`) has one more output,
:data:`~anomaly_seg_ros.model.sidecar.REFINED_SCORE_NAME`: the chosen score after the chosen
refinements, at the network input size. Its sidecar records that choice as a
:class:`GraphRefinement`; the Detector takes the graph's score only while its run-time
settings equal the recorded ones (:meth:`GraphRefinement.matches`) and runs the host path
otherwise, so switching score or refinement at run time keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.errors import ConfigError, ModelError
from anomaly_seg_ros.refinement_spec import REFINEMENTS


def refinement_settings(config: DetectorConfig) -> dict[str, Any]:
    """The settings that decide the refined score: the score, the switches, and the
    parameters of the refinements that are on (a switched-off refinement's parameters do
    not change the output, so they are left out).

    :return: field name → value, JSON-safe.
    """
    settings: dict[str, Any] = {"score_type": config.score_type}
    settings.update(
        (refinement.SWITCH, getattr(config, refinement.SWITCH)) for refinement in REFINEMENTS
    )
    for refinement in REFINEMENTS:
        if settings[refinement.SWITCH]:
            settings.update((name, getattr(config, name)) for name in refinement.parameters())
    return settings


@dataclass(frozen=True)
class GraphRefinement:
    """The score + refinement an exported graph computes, as recorded in its sidecar.

    :param settings: :func:`refinement_settings` of the config it was exported for.
    :param sml_mean: (C,) per-class max-logit means baked into the graph (``sml`` only).
    :param sml_std: (C,) per-class standard deviations, same.
    """

    settings: dict[str, Any]
    sml_mean: tuple[float, ...] | None = None
    sml_std: tuple[float, ...] | None = None

    @classmethod
    def from_config(
        cls,
        config: DetectorConfig,
        sml_stats: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> GraphRefinement:
        """The record for ``config``; SML statistics are kept only for ``sml``.

        :raises ModelError: ``sml`` without statistics.
        """
        if config.score_type != "sml":
            return cls(refinement_settings(config))
        if sml_stats is None:
            raise ModelError(
                "score 'sml' in the graph needs the per-class statistics: pass the model's "
                "SML stats file (written by anomaly-seg calibrate-sml)"
            )
        mean, std = (tuple(float(v) for v in np.asarray(a, np.float32)) for a in sml_stats)
        return cls(refinement_settings(config), mean, std)

    @property
    def config(self) -> DetectorConfig:
        """A DetectorConfig with these settings (other fields at their defaults)."""
        return DetectorConfig().replace(**self.settings)

    def matches(
        self, config: DetectorConfig, sml_stats: tuple[np.ndarray, np.ndarray] | None
    ) -> bool:
        """Whether the graph's refined score is what ``config`` asks the host for.

        :param sml_stats: the Detector's SML statistics; for ``sml`` they must equal the
            baked-in ones (bit for bit, as float32).
        """
        if refinement_settings(config) != self.settings:
            return False
        if self.sml_mean is None:
            return True
        if sml_stats is None or self.sml_std is None:
            return False
        return all(
            np.array_equal(np.asarray(mine, np.float32), np.asarray(baked, np.float32))
            for mine, baked in zip(sml_stats, (self.sml_mean, self.sml_std))
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"settings": dict(self.settings)}
        if self.sml_mean is not None:
            data["sml_mean"] = list(self.sml_mean)
            data["sml_std"] = list(self.sml_std or ())
        return data

    @classmethod
    def from_json(cls, data: object, source: str = "<sidecar>") -> GraphRefinement:
        """:raises ModelError: not a valid record (unknown setting, missing SML stats)."""
        if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
            raise ModelError(f"{source}: graph_refinement must be an object with 'settings'")
        settings = dict(data["settings"])
        if settings.get("vde") and "vde_units" not in settings:
            # Recorded before vde_units existed: the graph drops by fixed score offsets.
            settings["vde_units"] = "score"
        try:
            config = DetectorConfig().replace(**settings)
        except (ConfigError, TypeError) as error:
            raise ModelError(f"{source}: graph_refinement settings invalid: {error}") from error
        if refinement_settings(config) != settings:
            raise ModelError(
                f"{source}: graph_refinement settings {sorted(settings)} are not the set "
                f"{sorted(refinement_settings(config))} its switches need; re-export"
            )
        mean, std = data.get("sml_mean"), data.get("sml_std")
        if settings["score_type"] != "sml":
            return cls(settings)
        if not isinstance(mean, list) or not isinstance(std, list) or len(mean) != len(std):
            raise ModelError(f"{source}: graph_refinement for 'sml' lacks sml_mean/sml_std")
        return cls(settings, tuple(float(v) for v in mean), tuple(float(v) for v in std))
