"""One bag of a fleet evaluation, on a worker: mergeable state in two passes. No Ray here.

:class:`BagWorker` is what a Ray actor holds (``evaluation/fleet.py`` wraps it): it loads
the model once, then per bag

1. :meth:`BagWorker.read` streams the bag as ``anomaly-seg bag evaluate`` does (ground
   truth indexed by stamp, frames streamed once, the same topic choice, pairing and
   mask) and returns a :class:`BagState`: the pixel evaluator's state (exact: the valid
   scores; binned: two histograms), the object-level evaluator at the node's operating
   point, per-frame AP, frame counts and timing. The score maps are cached on the
   worker's local disk, as the single-bag evaluation caches them for its second pass;
2. :meth:`BagWorker.details` takes the component threshold the driver chose over *all*
   bags (the best-F1 threshold of the merged pixel metrics) and returns the SMIYC
   component state at it, plus gallery panels of the frames the driver asks for. Without
   the cache (another worker, a resumed run) the bag is read again first.

Failures come back as :class:`BagFailure` with a one-line reason, never as an exception,
so that a worker's death is the only thing the driver sees raised.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anomaly_seg_ros import __version__
from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.errors import AnomalySegError, InputError
from anomaly_seg_ros.evaluation.bag import (
    _index_labels,
    _paired_frames,
    _pictures,
    choose_topics,
)
from anomaly_seg_ros.evaluation.component_metrics import ComponentEvaluator
from anomaly_seg_ros.evaluation.dataset_evaluation import (
    FrameMetrics,
    _cache_frame,
    cached_frame,
    evaluate_frames,
)
from anomaly_seg_ros.evaluation.factory import create_pixel_evaluator
from anomaly_seg_ros.evaluation.frames import FrameScores
from anomaly_seg_ros.evaluation.object_metrics import ObjectEvaluator
from anomaly_seg_ros.evaluation.pairing import LabelIndex
from anomaly_seg_ros.evaluation.pixel_metrics import PixelEvaluator, PixelMetrics
from anomaly_seg_ros.evaluation.segmentation_metrics import SegmentationEvaluator
from anomaly_seg_ros.io.bags import open_bags, topics_of
from anomaly_seg_ros.pipeline.postprocess import anomaly_mask

#: Score name of an output bag's recorded scores (as ``bag evaluate`` names it).
RECORDED_SCORE = "anomaly_score"
#: Classes of the mask confusion: label 0 and 1 (255 = void falls in the ignore bucket).
MASK_CLASSES = ("in-distribution", "anomaly")


@dataclass(frozen=True)
class FleetSettings:
    """What every bag is evaluated with (part of each bag's cache key).

    :param label_topic: mono8 ground truth (0 = ID, 1 = anomaly, 255 = void).
    :param score_topic: 32FC1 score topic of output bags (without a model).
    :param image_topic: camera topic (model input; gallery pictures).
    :param threshold: the node's mask threshold for output bags (a model uses its own).
    :param min_area: the node's ``min_area`` for output bags (a model uses its own).
    :param mode: pixel metrics ``exact`` or ``binned``.
    :param stamp_tolerance: seconds a label's stamp may differ from its frame's.
    :param component_sizes: (min predicted segment, min ground-truth instance) pixels.
    """

    label_topic: str
    score_topic: str | None = None
    image_topic: str | None = None
    threshold: float = 0.0
    min_area: int = 0
    mode: str = "exact"
    stamp_tolerance: float = 0.0
    component_sizes: tuple[int, int] = (500, 100)

    def fingerprint(self) -> str:
        """Stable text of every setting and the package version."""
        return repr(sorted(asdict(self).items())) + f" anomaly_seg_ros {__version__}"


@dataclass(frozen=True)
class ModelPackage:
    """A model's files as bytes, with its settings: shipped to workers anywhere.

    :param name: the model file's name (``.onnx`` or ``.pt``).
    :param files: file name -> content (model, sidecar, SML statistics).
    :param config: the resolved detector settings (model file, ``--params``, flags).
    :param backend: the backend asked for (``auto`` runs ONNX Runtime on CPU workers).
    :param sml_stats: name of the statistics file among ``files``, if any.
    """

    name: str
    files: dict[str, bytes]
    config: DetectorConfig
    backend: str = "auto"
    sml_stats: str | None = None

    @classmethod
    def from_path(
        cls,
        model: Path,
        config: DetectorConfig,
        backend: str = "auto",
        sml_stats: Path | None = None,
    ) -> ModelPackage:
        """Read the model, its sidecar and statistics files.

        :raises InputError: the model file does not exist.
        :raises ModelError: an ``.onnx`` model's sidecar is missing or invalid (checked
            here, so that the message names the user's file, not a worker's copy).
        """
        from anomaly_seg_ros.detector import default_sml_stats_path
        from anomaly_seg_ros.model.sidecar import load_model_info, sidecar_path

        if not model.is_file():
            raise InputError(f"model {model} does not exist")
        if model.suffix == ".onnx":
            load_model_info(model)
        paths = [model, sidecar_path(model), Path(sml_stats or default_sml_stats_path(model))]
        files = {path.name: path.read_bytes() for path in paths if path.is_file()}
        stats = Path(sml_stats).name if sml_stats else None
        return cls(model.name, files, config, backend, stats)

    def digest(self) -> str:
        """SHA-256 of the files and the settings."""
        digest = hashlib.sha256()
        for name in sorted(self.files):
            digest.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        digest.update(f"{self.config!r} {self.backend}".encode())
        return digest.hexdigest()

    def load(self, folder: Path, threads: int, gpu: bool) -> Any:
        """Write the files into ``folder`` and open a Detector on them.

        :param threads: CPU threads of the worker (ONNX Runtime and the refinement).
        :param gpu: the worker holds a GPU (``auto`` may then choose TensorRT / CUDA).
        """
        from anomaly_seg_ros.detector import Detector

        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            (folder / name).write_bytes(data)
        backend, options = self.backend, {}
        if backend in ("auto", "onnxruntime") and not gpu:
            # One worker per CPU: ONNX Runtime's pool would otherwise take every core.
            backend, options = "onnxruntime", {"threads": threads}
        stats = folder / self.sml_stats if self.sml_stats else None
        return Detector.from_path(
            folder / self.name, self.config, backend, stats, host_threads=threads, **options
        )


@dataclass
class BagState:
    """Pass 1 of one bag: mergeable evaluator state, per-frame AP, counts and timing."""

    name: str
    path: str
    score_name: str
    pixel: PixelEvaluator
    objects: ObjectEvaluator
    frames: list[FrameMetrics]
    counts: dict[str, int]
    image_topic: str | None
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    worker: str
    metrics: PixelMetrics | None = None
    #: The node's mask against the ground truth (in-distribution / anomaly; void ignored).
    confusion: SegmentationEvaluator | None = None


@dataclass
class BagDetails:
    """Pass 2 of one bag: component state at the fleet's threshold, gallery panels."""

    name: str
    components: ComponentEvaluator
    panels: dict[int, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    #: The worker had no cached maps of the bag and read it again.
    read_again: bool = False


@dataclass(frozen=True)
class BagFailure:
    """A bag that could not be evaluated, and why (one line)."""

    name: str
    path: str
    reason: str


def worker_name() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def peak_rss_mb() -> float:
    """Peak resident memory of this process, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class BagWorker:
    """Evaluates bags one at a time with one Detector (loaded once).

    :param settings: the fleet's settings.
    :param model: the model to run on the camera images; None reads recorded scores.
    :param threads: CPU threads this worker may use.
    :param gpu: the worker holds a GPU.
    :param on_frames: called with a number of frames just done (progress), at most
        every 0.3 s.
    """

    def __init__(
        self,
        settings: FleetSettings,
        model: ModelPackage | None,
        threads: int = 1,
        gpu: bool = False,
        on_frames: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self._root = Path(tempfile.mkdtemp(prefix="fleet-worker-"))
        self.detector = model.load(self._root / "model", threads, gpu) if model else None
        self._on_frames = on_frames
        self._work: dict[str, Path] = {}
        #: How the per-bag rows name this worker (``host:pid``; Ray adds the node).
        self.label = worker_name()

    def describe(self) -> str:
        """``host:pid`` and the backend."""
        backend = self.detector.backend.describe() if self.detector else "recorded scores"
        return f"{self.label} {backend}"

    def close(self) -> None:
        """Close the detector and remove the local caches."""
        if self.detector is not None:
            self.detector.close()
        shutil.rmtree(self._root, ignore_errors=True)

    def read(self, name: str, bag: str) -> BagState | BagFailure:
        """Pass 1 of one bag (see the module docstring); a failure is returned."""
        folder = self._root / "bags" / name
        shutil.rmtree(folder, ignore_errors=True)
        self._work.pop(name, None)
        try:
            folder.mkdir(parents=True)
            state = self._read(name, Path(bag), folder)
        except (AnomalySegError, OSError) as error:
            shutil.rmtree(folder, ignore_errors=True)
            return BagFailure(name, bag, str(error))
        self._work[name] = folder
        return state

    def details(
        self, name: str, bag: str, threshold: float, wanted: list[int]
    ) -> BagDetails | BagFailure:
        """Pass 2 of one bag: components at ``threshold``, panels of frames ``wanted``.

        :param wanted: indices into the bag's paired frames (bag order).
        """
        start = time.perf_counter(), time.process_time()
        try:
            read_again = name not in self._work
            if read_again:
                state = self.read(name, bag)
                if isinstance(state, BagFailure):
                    return state
            folder = self._work[name]
            with open_bags([bag]) as reader:
                details = self._details(name, reader, folder, threshold, wanted, start)
            details.read_again = read_again
            return details
        except (AnomalySegError, OSError) as error:
            return BagFailure(name, bag, str(error))
        finally:
            shutil.rmtree(self._work.pop(name, self._root / "none"), ignore_errors=True)

    def _read(self, name: str, bag: Path, folder: Path) -> BagState:
        settings, detector = self.settings, self.detector
        start, cpu_start = time.perf_counter(), time.process_time()
        skipped: list[tuple[int, str]] = []
        with open_bags([bag]) as reader:
            label_topic, score_topic, image_topic = choose_topics(
                topics_of(reader),
                settings.label_topic,
                settings.score_topic,
                settings.image_topic,
                detector is not None,
            )
            if detector is not None:
                frame_topic, score_name = str(image_topic), detector.config.score_type
                threshold, min_area = detector.config.threshold, detector.config.min_area
            else:
                frame_topic, score_name = str(score_topic), RECORDED_SCORE
                threshold, min_area = settings.threshold, settings.min_area
            index: LabelIndex[Path] = LabelIndex(round(settings.stamp_tolerance * 1e9))
            _index_labels(reader, str(label_topic), folder / "_truth", index, skipped)
            timeline: list[Any] = []
            frames = _paired_frames(
                reader,
                frame_topic,
                detector=detector,
                index=index,
                mask_settings=(threshold, min_area),
                timeline=timeline,
                score_name=score_name,
                skipped=skipped,
            )
            pixel = create_pixel_evaluator(settings.mode)
            objects = ObjectEvaluator(threshold, min_area)
            confusion = SegmentationEvaluator(MASK_CLASSES)
            result = evaluate_frames(
                self._cached(frames, folder, score_name, (threshold, min_area), confusion),
                [score_name],
                dataset=name,
                mode=settings.mode,
                progress=False,
                objects={score_name: objects},
                pixel_evaluators={score_name: pixel},
            )
        paired = len(result.frame_names)
        (folder / "stamps.txt").write_text("\n".join(result.frame_names))
        if paired == 0:
            first = f"; first problem: {sorted(skipped)[0][1]}" if skipped else ""
            raise InputError(
                f"bag {bag}: no frame paired with ground truth on {label_topic} "
                f"({len(timeline)} frames read, {len(skipped)} malformed messages{first})"
            )
        counts = {
            "frames": len(timeline),
            "frames_with_label": paired,
            "frames_without_label": len(timeline) - paired,
            "labels_without_frame": len(index.labels_without_frame),
            "malformed": len(skipped),
        }
        return BagState(
            name=name,
            path=str(bag),
            score_name=score_name,
            pixel=pixel,
            objects=objects,
            frames=result.scores[score_name].frames,
            counts=counts,
            image_topic=image_topic,
            seconds=time.perf_counter() - start,
            cpu_seconds=time.process_time() - cpu_start,
            peak_rss_mb=peak_rss_mb(),
            worker=self.label,
            metrics=result.scores[score_name].pixel,
            confusion=confusion,
        )

    def _cached(
        self,
        frames: Iterator[FrameScores],
        folder: Path,
        score_name: str,
        mask_settings: tuple[float, int],
        confusion: SegmentationEvaluator,
    ) -> Iterator[FrameScores]:
        """Each frame cached for pass 2 (as the single-bag evaluation does), its mask into
        ``confusion``, progress told."""
        done, told = 0, time.monotonic()
        for number, frame in enumerate(frames):
            _cache_frame(folder, number, frame, [score_name])
            mask = anomaly_mask(frame.scores[score_name], *mask_settings)
            confusion.process(mask.astype(np.uint8), frame.label)
            yield frame
            done += 1
            if self._on_frames is not None and time.monotonic() - told > 0.3:
                self._on_frames(done)
                done, told = 0, time.monotonic()
        if self._on_frames is not None and done:
            self._on_frames(done)

    def _details(
        self,
        name: str,
        reader: Any,
        folder: Path,
        threshold: float,
        wanted: list[int],
        start: tuple[float, float],
    ) -> BagDetails:
        from anomaly_seg_ros.evaluation.report import frame_panel

        score_name = self.detector.config.score_type if self.detector else RECORDED_SCORE
        count = len(list((folder / "_label").iterdir()))
        components = ComponentEvaluator(threshold, *self.settings.component_sizes)
        for number in range(count):
            components.process(*cached_frame(folder, number, score_name))
        panels: dict[int, np.ndarray] = {}
        if wanted:
            image_topic = choose_topics(
                topics_of(reader),
                self.settings.label_topic,
                self.settings.score_topic,
                self.settings.image_topic,
                self.detector is not None,
            )[2]
            stamps = [int(line) for line in (folder / "stamps.txt").read_text().split()]
            pictures = _pictures(reader, image_topic, {stamps[i] for i in wanted})
            for number in wanted:
                score, label = cached_frame(folder, number, score_name)
                picture = pictures.get(stamps[number])
                if picture is None:
                    picture = np.full((*label.shape, 3), 64, np.uint8)
                panels[number] = frame_panel(picture, label, score, threshold)
        seconds = time.perf_counter() - start[0]
        return BagDetails(name, components, panels, seconds, time.process_time() - start[1])
