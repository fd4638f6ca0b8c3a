"""Sources of evaluated frames: the Detector over a dataset, or saved score maps.

Both yield :class:`FrameScores` (every score map of one frame with its label), so the
metrics code does not care where the scores came from. Saved maps live in
``DIR/<score name>/<frame name>.npy`` ((H, W) float32), as :func:`save_frame_scores`
writes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.datasets.anomaly import AnomalyDataset
from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.protocol import (
    EvaluationProtocol,
    has_anomaly,
    resize_label_nearest,
)
from anomaly_seg_ros.evaluation.scoring import ScoreSpec, compute_score_maps


@dataclass(frozen=True)
class FrameScores:
    """One frame: its name, 0/1/255 label, and (H, W) float32 score per score name."""

    name: str
    label: np.ndarray
    scores: dict[str, np.ndarray]


def detector_frames(
    detector: object,
    dataset: AnomalyDataset,
    specs: Sequence[ScoreSpec],
    base_config: DetectorConfig | None = None,
    protocol: EvaluationProtocol | None = None,
    skipped: list[str] | None = None,
) -> Iterator[FrameScores]:
    """Run the detector once per frame and derive every spec's score from that pass.

    :param detector: an :class:`anomaly_seg_ros.detector.Detector`.
    :param base_config: refinement settings (widths, VDE boosts); default the detector's.
    :param protocol: evaluation size and frame skipping (default: label size, no skip).
        A skipped frame is not run through the detector.
    :param skipped: receives the names of the frames skipped for having no anomaly.
    """
    base = base_config or detector.config  # type: ignore[attr-defined]
    network_size = tuple(detector.info.input_size)  # type: ignore[attr-defined]
    if protocol is not None and protocol.eval_size == "network" and base.aspect != "stretch":
        # The network's view is then a letterboxed or cropped part of the frame, not the
        # whole label resized: scoring it against a resized label would misalign them.
        raise InputError(
            f"--eval-size network needs aspect 'stretch' (the model's settings say "
            f"{base.aspect!r}); use --eval-size label or set aspect: stretch"
        )
    for index, frame in enumerate(dataset):
        rgb, label = dataset.read(index)
        label = _protocol_label(label, network_size, protocol)
        if _skip(label, protocol):
            if skipped is not None:
                skipped.append(frame.name)
            continue
        result = detector.detect(rgb)  # type: ignore[attr-defined]
        scores = compute_score_maps(
            result.summary,
            specs,
            base,
            label.shape,
            detector.sml_stats,  # type: ignore[attr-defined]
            detector.strip_pool,  # type: ignore[attr-defined]
        )
        yield FrameScores(frame.name, label, scores)


def _protocol_label(
    label: np.ndarray, network_size: tuple[int, ...], protocol: EvaluationProtocol | None
) -> np.ndarray:
    if protocol is not None and protocol.eval_size == "network":
        return resize_label_nearest(label, (network_size[0], network_size[1]))
    return label


def _skip(label: np.ndarray, protocol: EvaluationProtocol | None) -> bool:
    return protocol is not None and protocol.skip_frames_without_anomaly and not has_anomaly(label)


def saved_frames(
    score_dir: str | Path,
    dataset: AnomalyDataset,
    score_names: Sequence[str],
    protocol: EvaluationProtocol | None = None,
    skipped: list[str] | None = None,
) -> Iterator[FrameScores]:
    """Read saved score maps for every frame of ``dataset``.

    :param protocol: with ``eval_size="network"`` each label is resized by nearest
        neighbour to its saved maps' size (the maps were saved at network size); with
        ``label`` the maps must have the label's size. Frame skipping as
        :func:`detector_frames`.
    :param skipped: receives the names of the frames skipped for having no anomaly.
    :raises InputError: a map is missing or does not match its label's size.
    """
    score_dir = Path(score_dir)
    for frame in dataset:
        label = frame.load_label()
        if protocol is not None and protocol.eval_size == "network" and score_names:
            first = score_dir / score_names[0] / f"{frame.name}.npy"
            if first.is_file():
                shape = np.load(first, mmap_mode="r", allow_pickle=False).shape
                label = resize_label_nearest(label, (shape[0], shape[1]))
        if _skip(label, protocol):
            if skipped is not None:
                skipped.append(frame.name)
            continue
        scores = {}
        for name in score_names:
            path = score_dir / name / f"{frame.name}.npy"
            if not path.is_file():
                raise InputError(
                    f"score map {path} missing; expected {score_dir}/<score>/<frame>.npy for "
                    "every frame (as written by `anomaly-seg evaluate --save-scores`)"
                )
            score = np.load(path, allow_pickle=False)
            if score.shape != label.shape:
                raise InputError(
                    f"score map {path} is {score.shape}, its label {label.shape}"
                    + (
                        "; maps saved at network size need --eval-size network"
                        if protocol is None or protocol.eval_size == "label"
                        else ""
                    )
                )
            scores[name] = score
        yield FrameScores(frame.name, label, scores)


def saved_score_names(score_dir: str | Path) -> list[str]:
    """Score names present in a saved-score folder (its sub-folders), sorted.

    :raises InputError: no sub-folder holds ``.npy`` files.
    """
    score_dir = Path(score_dir)
    names = (
        sorted(
            path.name for path in score_dir.iterdir() if path.is_dir() and any(path.glob("*.npy"))
        )
        if score_dir.is_dir()
        else []
    )
    if not names:
        raise InputError(f"{score_dir} holds no <score>/<frame>.npy maps")
    return names


def save_frame_scores(score_dir: str | Path, frame: FrameScores) -> None:
    """Write every score map of ``frame`` as ``score_dir/<score>/<frame>.npy``."""
    score_dir = Path(score_dir)
    for name, score in frame.scores.items():
        folder = score_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{frame.name}.npy", np.asarray(score, dtype=np.float32))
