"""Detector: RGB image → semantic labels, anomaly score and anomaly mask.

The whole per-frame path is :meth:`Detector.detect`, top to bottom.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from anomaly_seg_ros.backends import InferenceBackend, create_backend
from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.errors import ConfigError, ModelError
from anomaly_seg_ros.model.sidecar import ModelInfo
from anomaly_seg_ros.model.sml_stats import load_sml_stats
from anomaly_seg_ros.model.summary import LogitSummary
from anomaly_seg_ros.output_table import ON_REQUEST
from anomaly_seg_ros.pipeline import preprocess, refine, visualize
from anomaly_seg_ros.pipeline.postprocess import Stopwatch, postprocess
from anomaly_seg_ros.pipeline.strips import StripPool

LOGGER = logging.getLogger(__name__)


def default_sml_stats_path(model_path: str | Path) -> Path:
    """``model.onnx`` → ``model.sml.json`` beside it (used when no path is given)."""
    return Path(model_path).with_suffix(".sml.json")


def _wanted_outputs(outputs: Iterable[str]) -> frozenset[str]:
    """The on-request images asked for.

    :raises ConfigError: an unknown name.
    """
    wanted = frozenset(outputs)
    unknown = wanted - set(ON_REQUEST)
    if unknown:
        raise ConfigError(f"unknown outputs {sorted(unknown)}; valid: {', '.join(ON_REQUEST)}")
    return wanted


@dataclass(frozen=True)
class Result:
    """One frame's output at the camera resolution.

    :param labels: (H, W) uint8 train IDs.
    :param score: (H, W) float32 anomaly score, higher = more anomalous.
    :param mask: (H, W) bool anomaly mask.
    :param labels_color: (H, W, 3) uint8 RGB, or None when not requested.
    :param overlay: (H, W, 3) uint8 RGB, or None when not requested.
    :param summary: the logit summary at the network input size.
    :param timings: seconds per stage, in the order the stages ran.
    :param road_region: (H, W) bool VDE road region, or None when not asked for
        (``detect(..., road_region=True)`` or :meth:`Detector.add_road_region`).
    """

    labels: np.ndarray
    score: np.ndarray
    mask: np.ndarray
    labels_color: np.ndarray | None
    overlay: np.ndarray | None
    summary: LogitSummary
    timings: dict[str, float] = field(default_factory=dict)
    road_region: np.ndarray | None = None


class Detector:
    """Runs a backend and turns its logit summary into labels, score and mask.

    :param backend: an inference backend (see :func:`anomaly_seg_ros.backends.create_backend`).
    :param config: detector settings; replace at run time through the ``config`` property.
    :param sml_stats: per-class (mean, std) of the max logit, needed for ``score_type='sml'``.
    :param host_threads: threads for the host refinement (row strips; the result does not
        depend on the count); 0 = one per available CPU, at most
        :data:`~anomaly_seg_ros.pipeline.strips.MAX_AUTO_THREADS`.
    """

    def __init__(
        self,
        backend: InferenceBackend,
        config: DetectorConfig | None = None,
        sml_stats: tuple[np.ndarray, np.ndarray] | None = None,
        host_threads: int = 0,
    ) -> None:
        self.backend = backend
        self.sml_stats = sml_stats
        self._config = DetectorConfig()
        self.config = config or DetectorConfig()
        self.strip_pool = StripPool(host_threads)
        #: (256, 3) uint8 RGB colour of each train ID, from the model's sidecar
        self.palette = visualize.model_palette(backend.info)
        self._inputs = threading.local()
        self._shared_input_lock = threading.Lock()

    @classmethod
    def from_path(
        cls,
        model_path: str | Path,
        config: DetectorConfig | None = None,
        backend: str = "auto",
        sml_stats: str | Path | None = None,
        host_threads: int = 0,
        **backend_options: object,
    ) -> Detector:
        """Load a model (``.onnx`` + sidecar, or ``.pt``) and its SML statistics.

        :param sml_stats: path of the SML stats file; default ``<model>.sml.json`` if present.
        :raises ModelError: a file is missing or does not fit the model.
        :raises ConfigError: ``config`` does not fit the model.
        """
        model_path = Path(model_path)
        engine = create_backend(backend, model_path, None, **backend_options)
        # From here on the backend holds device memory (TensorRT): any failure closes it.
        try:
            stats_path = Path(sml_stats) if sml_stats else default_sml_stats_path(model_path)
            stats = None
            if sml_stats or stats_path.is_file():
                stats = load_sml_stats(stats_path, engine.info.class_names)
            return cls(engine, config, stats, host_threads)
        except BaseException:
            engine.close()
            raise

    @property
    def info(self) -> ModelInfo:
        return self.backend.info

    @property
    def config(self) -> DetectorConfig:
        return self._config

    @config.setter
    def config(self, config: DetectorConfig) -> None:
        """Swap settings atomically; a frame in flight finishes with the old ones."""
        self.check_config(config)
        self._config = config

    def check_config(self, config: DetectorConfig) -> None:
        """Raise if ``config`` does not fit this model (without applying it).

        :raises ModelError: ``sml`` without SML statistics.
        :raises ConfigError: ``road_class`` is not a class of the model.
        """
        if config.score_type == "sml" and self.sml_stats is None:
            raise ModelError(
                "score_type 'sml' needs SML statistics (sml_stats file) for this model"
            )
        if config.vde and not 0 <= config.road_class < self.info.num_classes:
            raise ConfigError(
                f"road_class {config.road_class} is not a class of this model "
                f"({self.info.num_classes} classes)"
            )

    def detect(
        self, rgb: np.ndarray, outputs: Iterable[str] = (), road_region: bool = False
    ) -> Result:
        """Run one frame.

        :param rgb: (H, W, 3) uint8 RGB image at camera size.
        :param outputs: extra images to build: any of ``labels_color``, ``overlay``.
        :param road_region: also find the VDE road region at camera size (the object
            layer's on-road test); frames that do not ask pay nothing.
        :return: the frame's :class:`Result` at (H, W).
        :raises InputError: ``rgb`` is not an (H, W, 3) uint8 image.
        """
        config = self._config  # one consistent snapshot for the whole frame
        wanted = _wanted_outputs(outputs)
        preprocess.check_rgb(rgb)
        camera_size = rgb.shape[:2]
        stopwatch = Stopwatch()
        lap = stopwatch.lap
        buffer, lock = self._input_target()
        with lock:
            network_input = preprocess.to_network_input(rgb, self.info, buffer, config.aspect)
            lap("preprocess")
            summary = self.backend.infer(network_input)
            lap("inference")

        maps = postprocess(
            summary,
            config,
            camera_size,
            self.sml_stats,
            self.strip_pool,
            lap,
            graph=self.info.graph_refinement,
        )
        labels, score, mask = maps.labels, maps.score, maps.mask

        result = Result(labels, score, mask, None, None, summary, stopwatch.timings)
        if road_region:
            result = replace(result, road_region=self._road_region(summary, camera_size, config))
            lap("road_region")
        if not wanted:
            return result
        labels_color, overlay = self._pictures(rgb, result, wanted, config)
        lap("visualize")
        return replace(result, labels_color=labels_color, overlay=overlay)

    def render(self, rgb: np.ndarray, result: Result, outputs: Iterable[str]) -> Result:
        """Add on-request images to a frame's result, so that a caller can send labels,
        score and mask on while they are drawn (the node), or one image while the next one
        is drawn. The colours ``result`` already has are reused for the overlay.

        :param rgb: the (H, W, 3) uint8 image ``result`` was detected on.
        :param result: its result.
        :param outputs: any of ``labels_color``, ``overlay``.
        :return: ``result`` with those images added (the same as ``detect(rgb, outputs)``'s,
            drawn with the detector's current ``overlay_alpha``), its other images kept, and
            the drawing time added to ``visualize`` in its timings.
        :raises ConfigError: an unknown output name.
        """
        wanted = _wanted_outputs(outputs)
        if not wanted:
            return result
        started = time.perf_counter()
        labels_color, overlay = self._pictures(rgb, result, wanted, self._config)
        timings = dict(result.timings)
        timings["visualize"] = timings.get("visualize", 0.0) + time.perf_counter() - started
        return replace(
            result,
            labels_color=labels_color if "labels_color" in wanted else result.labels_color,
            overlay=overlay if "overlay" in wanted else result.overlay,
            timings=timings,
        )

    def add_road_region(self, result: Result) -> Result:
        """``result`` with its :attr:`Result.road_region` (found now if it has none)."""
        if result.road_region is not None:
            return result
        region = self._road_region(result.summary, result.mask.shape, self._config)
        return replace(result, road_region=region)

    def _road_region(
        self, summary: LogitSummary, camera_size: tuple[int, int], config: DetectorConfig
    ) -> np.ndarray:
        """(H, W) bool VDE road region of ``summary`` at ``camera_size``: the region
        :func:`~anomaly_seg_ros.pipeline.refine.road_region` finds at the network size, resized
        nearest (the labels' resize)."""
        seeds = refine.road_seeds(summary, config.road_class, config.road_confidence)
        region = refine.road_region(summary.label, None, seeds=seeds)
        return preprocess.resize_labels(region.view(np.uint8), camera_size).view(bool)

    def _pictures(
        self, rgb: np.ndarray, result: Result, wanted: frozenset[str], config: DetectorConfig
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(labels_color, overlay) at camera size, each None when not in ``wanted``."""
        labels_color = result.labels_color
        if labels_color is None:
            # Colours at the network size, then the nearest resize: the same picture.
            labels_color = visualize.colorize_labels(result.summary.label, self.palette)
            labels_color = preprocess.to_camera(
                labels_color,
                result.labels.shape,
                config.aspect,
                tuple(int(v) for v in self.palette[255]),  # the colour of void
                nearest=True,
            )
        overlay = None
        if "overlay" in wanted:
            overlay = visualize.overlay(
                rgb, labels_color, result.score, result.mask, config.overlay_alpha
            )
        return (labels_color if "labels_color" in wanted else None), overlay

    def _input_target(self) -> tuple[np.ndarray, contextlib.AbstractContextManager[object]]:
        """Where to preprocess to, and the lock to hold until inference has read it.

        The backend's own input array (e.g. TensorRT's pinned buffer) when it offers a
        usable one: shared, so frames from several threads take turns. Otherwise this
        thread's array, reused every frame (the backends consume their input before
        ``infer`` returns), which needs no lock.
        """
        shape = (1, 3, *self.info.input_size)
        shared = self.backend.input_buffer()
        if (
            shared is not None
            and shared.shape == shape
            and shared.dtype == np.float32
            and shared.flags.c_contiguous
        ):
            return shared, self._shared_input_lock
        buffer = getattr(self._inputs, "array", None)
        if buffer is None or buffer.shape != shape:
            buffer = self._inputs.array = np.empty(shape, np.float32)
        return buffer, contextlib.nullcontext()

    def close(self) -> None:
        self.strip_pool.close()
        self.backend.close()

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
