"""Evaluate a rosbag: the node's recorded scores, or the Detector run on recorded images.

Two sources of scores:

* an **output bag** (as ``anomaly-seg bag run`` or a recorded node writes it): the
  ``…/anomaly_score`` topic (32FC1);
* an **input bag** plus a :class:`~anomaly_seg_ros.detector.Detector`: camera images
  (``Image`` or ``CompressedImage``) are run through the detector.

The mask (area timeline, object-level figures) is the node's: ``score > threshold`` with
components under ``min_area`` pixels dropped (the detector's own settings with a
detector).

With a ground-truth topic (``mono8``: 0 = in-distribution, 1 = anomaly, 255 = void) paired
by ``header.stamp``, the paired frames get the same metrics and report as
``anomaly-seg evaluate``, plus object-level figures at the node's operating point. Pairing
does not depend on the order anything was recorded in: the ground truth is read first
(stamps indexed in memory, pixels cached as PNG on disk), then the frames are streamed
once and each takes its label by stamp (:class:`~anomaly_seg_ros.evaluation.pairing.
LabelIndex`). Memory holds one frame and a few integers per label. Every frame enters the
timeline plot; frames without ground truth and ground truth without a frame are counted
in the report, with their stamps. The report folder is written under a temporary name and
renamed when complete: a failed run leaves no report folder.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from anomaly_seg_ros.atomic import atomic_folder
from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.bag_objects import BagObjects
from anomaly_seg_ros.evaluation.dataset_evaluation import EvaluationResult, evaluate_frames
from anomaly_seg_ros.evaluation.frames import FrameScores
from anomaly_seg_ros.evaluation.object_metrics import ObjectEvaluator
from anomaly_seg_ros.evaluation.object_truth import OBSTACLES_TOPIC
from anomaly_seg_ros.evaluation.pairing import LabelIndex
from anomaly_seg_ros.io.bags import (
    COMPRESSED_TYPE,
    IMAGE_TYPE,
    deserialize,
    open_bags,
    output_error,
    pick_topic,
    topics_of,
)
from anomaly_seg_ros.io.messages import decode_message, float_image, label_image, stamp_ns
from anomaly_seg_ros.io.outputs import OUTPUT_SUFFIXES
from anomaly_seg_ros.objects import CameraMount, ObjectSettings
from anomaly_seg_ros.pipeline.postprocess import anomaly_mask

LOGGER = logging.getLogger(__name__)

#: Stamps listed in the report per kind of unpaired message (the counts are complete).
LISTED_STAMPS = 50


@dataclass(frozen=True)
class TimelineEntry:
    """One frame of the bag: when, whether it had ground truth, area and score levels."""

    stamp_ns: int
    has_label: bool
    anomaly_fraction: float
    score_median: float
    score_p99: float
    score_max: float


def evaluate_bag(
    bag: str | Path,
    out_dir: str | Path,
    *,
    score_topic: str | None = None,
    label_topic: str | None = None,
    label_bag: str | Path | None = None,
    image_topic: str | None = None,
    detector: Any = None,
    threshold: float = 0.0,
    min_area: int = 0,
    mode: str = "exact",
    stamp_tolerance: float = 0.0,
    component_sizes: tuple[int, int] = (500, 100),
    gallery_size: int = 4,
    progress: bool = True,
    object_settings: ObjectSettings | None = None,
    mount: CameraMount | None = None,
) -> EvaluationResult:
    """Evaluate one bag and write the report (plus ``timeline.png``) to ``out_dir``.

    :param out_dir: report folder to create; it must not exist (written under a
        temporary name, renamed when complete).
    :param score_topic: 32FC1 score topic of an output bag (default: the one topic ending
        in ``anomaly_score``); ignored with ``detector``.
    :param label_topic: mono8 ground-truth topic; None evaluates nothing but the timeline.
    :param label_bag: another bag holding ``label_topic`` (e.g. the input bag of
        ``anomaly-seg bag run``, whose output bag has no ground truth).
    :param image_topic: camera topic; required (or unambiguous) with ``detector``, optional
        otherwise (then used for the gallery).
    :param detector: run this Detector on the images instead of reading scores.
    :param threshold: the node's mask threshold, for an output bag (a detector uses its own).
    :param min_area: the node's ``min_area``, for an output bag (a detector uses its own).
    :param stamp_tolerance: seconds by which a label's stamp may differ from its frame's.
    :param object_settings: object layer settings (default ``ObjectSettings()``), used when
        a bag carries obstacle ground truth (:mod:`~anomaly_seg_ros.evaluation.bag_objects`).
    :param mount: the camera mount; default: the bags' ``description.json``.
    :return: the result; ``settings`` holds frames in / paired / unpaired.
    :raises InputError: missing or ambiguous topics, bad encodings, size mismatches, an
        existing ``out_dir``.
    :raises OutputError: the report or the work files (temporary folder) cannot be
        written (full disk); nothing is left.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise InputError(f"report folder {out_dir} already exists; choose a new path")
    try:
        skipped: list[tuple[int, str]] = []  # (bag or header time, reason): malformed messages
        bags = [bag] if label_bag is None else [bag, label_bag]
        with ExitStack() as stack:
            reader = stack.enter_context(open_bags(bags))
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bag-eval-")))
            topics = topics_of(reader)
            label_topic, score_topic, image_topic = choose_topics(
                topics, label_topic, score_topic, image_topic, detector is not None
            )
            if detector is not None:
                frame_topic, score_name = str(image_topic), detector.config.score_type
                threshold, min_area = detector.config.threshold, detector.config.min_area
            else:
                frame_topic, score_name = str(score_topic), "anomaly_score"
            index: LabelIndex[Path] = LabelIndex(tolerance_ns=round(stamp_tolerance * 1e9))
            if label_topic is not None:
                _index_labels(reader, label_topic, work / "_truth", index, skipped)
            timeline: list[TimelineEntry] = []
            objects_run = None
            if label_topic is not None and OBSTACLES_TOPIC in topics:
                objects_run = BagObjects(reader, object_settings or ObjectSettings(), mount, bags)
            frames = _paired_frames(
                reader,
                frame_topic,
                detector=detector,
                index=index if label_topic is not None else None,
                mask_settings=(threshold, min_area),
                timeline=timeline,
                score_name=score_name,
                skipped=skipped,
                objects_run=objects_run,
            )
            objects = {score_name: ObjectEvaluator(threshold, min_area)} if label_topic else None
            result = evaluate_frames(
                frames,
                [score_name],
                dataset=Path(bag).name,
                mode=mode,
                work_dir=work,
                component_sizes=component_sizes,
                progress=progress,
                objects=objects,
            )
            paired = {int(name) for name in result.frame_names}
            _check_evaluated(bag, frame_topic, label_topic, timeline, paired, index, skipped)
            timeline = sorted(
                (replace(entry, has_label=entry.stamp_ns in paired) for entry in timeline),
                key=lambda entry: entry.stamp_ns,
            )
            result.settings.update(
                _bag_summary(bag, timeline, len(paired), index),
                score_topic=score_topic,
                image_topic=image_topic,
                label_topic=label_topic,
                malformed=len(skipped),
                malformed_messages=[list(item) for item in sorted(skipped)[:LISTED_STAMPS]],
                threshold=threshold,
                min_area=min_area,
            )
            title = Path(bag).name
            _write(
                result,
                out_dir,
                work,
                reader,
                image_topic,
                timeline,
                title,
                gallery_size,
                objects_run,
            )
    except OSError as error:  # the work files (label and score caches) in the temp folder
        converted = output_error(error, f"the work files in {tempfile.gettempdir()}")
        raise converted from error
    return result


def _check_evaluated(
    bag: str | Path,
    frame_topic: str,
    label_topic: str | None,
    timeline: list[TimelineEntry],
    paired: set[int],
    index: LabelIndex[Path],
    skipped: list[tuple[int, str]],
) -> None:
    """Refuse to write a report over nothing: no readable frame, or ground truth asked for
    and no frame paired with it (so the figures would be over 0 frames).

    :raises InputError: saying what was found and what to change.
    """
    if not timeline:
        first = f"; first: {sorted(skipped)[0][1]}" if skipped else ""
        raise InputError(
            f"no frame of {frame_topic} in {bag} could be read ({len(skipped)} malformed"
            f"{first}); no report written"
        )
    if label_topic is None or paired:
        return
    labels = index.labels_without_frame  # none was taken
    bad = [reason for _, reason in sorted(skipped) if reason.startswith(f"{label_topic}:")]
    if not labels:
        why = f"none of its {len(bad)} messages is a usable label" + (
            f" (first: {bad[0]})" if bad else ""
        )
    else:
        frames = np.array(sorted(entry.stamp_ns for entry in timeline), np.int64)
        stamps = np.array(labels, np.int64)
        at = np.clip(np.searchsorted(frames, stamps), 1, len(frames) - 1) if len(frames) > 1 else 0
        nearest = np.minimum(np.abs(frames[at] - stamps), np.abs(frames[at - 1] - stamps)).min()
        why = (
            f"{len(labels)} labels, but no stamp within --stamp-tolerance of a frame "
            f"(nearest {nearest / 1e9:.3f} s apart)"
        )
    raise InputError(
        f"no frame of {frame_topic} paired with ground truth on {label_topic}: "
        f"{len(timeline)} frames, {why}; no report written"
    )


def choose_topics(
    topics: dict[str, str],
    label_topic: str | None,
    score_topic: str | None,
    image_topic: str | None,
    with_detector: bool,
) -> tuple[str | None, str | None, str | None]:
    """(ground truth, score, camera) topics of a bag, each checked or chosen.

    With a detector the camera topic is the frames' source (required) and there is no
    score topic; without one the score topic is, and the camera topic only feeds the
    gallery (None when not unambiguous).

    :param topics: topic -> message type of the bag (:func:`topics_of`).
    :raises InputError: a named topic is missing or of another type, or a required
        choice is ambiguous.
    """
    image_types = (IMAGE_TYPE, COMPRESSED_TYPE)
    if label_topic is not None:
        label_topic = pick_topic(topics, label_topic, (IMAGE_TYPE,))
    # Camera candidates: anything but the ground truth and the node's own outputs.
    not_camera = [t for t in topics if t == label_topic or t.endswith(OUTPUT_SUFFIXES)]
    if with_detector:
        return label_topic, None, pick_topic(topics, image_topic, image_types, exclude=not_camera)
    score_topic = pick_topic(topics, score_topic, (IMAGE_TYPE,), "anomaly_score")
    return label_topic, score_topic, _gallery_topic(topics, image_topic, image_types, not_camera)


def _write(
    result: EvaluationResult,
    out_dir: Path,
    work: Path,
    reader: Any,
    image_topic: str | None,
    timeline: list[TimelineEntry],
    title: str,
    gallery_size: int,
    objects_run: BagObjects | None = None,
) -> None:
    """Every report file, into a temporary folder renamed to ``out_dir`` when complete.

    :raises OutputError: a full disk or another write error (nothing is left).
    """
    from anomaly_seg_ros.evaluation.plots import plot_timeline
    from anomaly_seg_ros.evaluation.report import gallery_frames, write_report

    wanted = {
        int(result.frame_names[item[3]]) for item in gallery_frames(result, None, gallery_size)
    }
    pictures = _pictures(reader, image_topic, wanted)
    try:
        with atomic_folder(out_dir) as partial:
            partial.mkdir()
            write_report(
                result,
                partial,
                cache=work,
                load_image=lambda name: pictures.get(int(name)),
                gallery_size=gallery_size,
            )
            plot_timeline(timeline, partial / "timeline.png", title=title)
            if objects_run is not None:
                figures = objects_run.write(partial, title)
                result.settings["ground_objects"] = figures
    except BaseException as error:
        converted = output_error(error, f"report {out_dir}")
        if converted is error:
            raise
        raise converted from error


def _messages(reader: Any, topic: str, skipped: list[tuple[int, str]]) -> Iterator[Any]:
    """The deserialised messages of one topic in bag order; undeserializable ones listed."""
    connections = [c for c in reader.connections if c.topic == topic]
    for connection, timestamp, raw in reader.messages(connections=connections):
        try:
            yield deserialize(reader, raw, connection, timestamp)
        except InputError as error:
            LOGGER.warning("%s; skipped", error)
            skipped.append((timestamp, str(error)))


def _index_labels(
    reader: Any,
    topic: str,
    folder: Path,
    index: LabelIndex[Path],
    skipped: list[tuple[int, str]],
) -> None:
    """Read every ground-truth message once: its stamp into ``index``, its pixels to disk.

    PNG keeps a 0/1/255 map small (a 1024×2048 label is some kB), so the disk cache of a
    long bag stays far below the bag itself.
    """
    folder.mkdir()
    for number, message in enumerate(_messages(reader, topic, skipped)):
        stamp = stamp_ns(message)
        try:
            label = label_image(message)
        except InputError as error:  # a malformed label: listed, the next one goes on
            LOGGER.warning("%s at stamp %d skipped: %s", topic, stamp, error)
            skipped.append((stamp, f"{topic}: {error}"))
            continue
        path = folder / f"{number:08d}.png"
        if not cv2.imwrite(str(path), label, (cv2.IMWRITE_PNG_COMPRESSION, 1)):
            raise OSError(f"cannot write {path}")
        index.add(stamp, path)


def _paired_frames(
    reader: Any,
    topic: str,
    *,
    detector: Any,
    index: LabelIndex[Path] | None,
    mask_settings: tuple[float, int],
    timeline: list[TimelineEntry],
    score_name: str,
    skipped: list[tuple[int, str]],
    objects_run: BagObjects | None = None,
) -> Iterator[FrameScores]:
    """Frames with ground truth, in bag order; every frame is appended to ``timeline``."""
    for message in _messages(reader, topic, skipped):
        stamp = stamp_ns(message)
        try:
            road_region = None
            if detector is not None:
                result = detector.detect(decode_message(message), road_region=bool(objects_run))
                score, mask, road_region = result.score, result.mask, result.road_region
            else:
                score = float_image(message)
                mask = anomaly_mask(score, *mask_settings)
        except InputError as error:  # a malformed image: listed, the next one goes on
            LOGGER.warning("%s at stamp %d skipped: %s", topic, stamp, error)
            skipped.append((stamp, f"{topic}: {error}"))
            continue
        timeline.append(_entry(stamp, score, mask))
        if objects_run is not None:
            objects_run.frame(stamp, mask, score, road_region)
        taken = index.take(stamp) if index is not None else None
        if taken is not None:
            label = cv2.imread(str(taken[1]), cv2.IMREAD_UNCHANGED)
            if label is None:
                raise OSError(f"cannot read back the cached label {taken[1]}")
            yield FrameScores(str(stamp), label, {score_name: score})


def _pictures(reader: Any, topic: str | None, stamps: set[int]) -> dict[int, np.ndarray]:
    """RGB camera images of the frames with these stamps (the gallery's few), one pass."""
    pictures: dict[int, np.ndarray] = {}
    if topic is None or not stamps:
        return pictures
    for message in _messages(reader, topic, []):
        stamp = stamp_ns(message)
        if stamp in stamps:
            try:
                pictures[stamp] = decode_message(message)
            except InputError as error:
                LOGGER.warning("%s at stamp %d not in the gallery: %s", topic, stamp, error)
    return pictures


def _gallery_topic(
    topics: dict[str, str], wanted: str | None, types: tuple[str, ...], exclude: list[str]
) -> str | None:
    """Camera topic of an output bag (``bag run`` copies it), for the gallery only."""
    if wanted is not None:
        return pick_topic(topics, wanted, types)
    try:
        return pick_topic(topics, None, types, exclude=exclude)
    except InputError:
        return None  # no unambiguous camera topic: the gallery draws on grey


def _entry(stamp: int, score: np.ndarray, mask: np.ndarray) -> TimelineEntry:
    median, p99, top = np.percentile(score, (50, 99, 100))
    return TimelineEntry(stamp, False, float(mask.mean()), float(median), float(p99), float(top))


def _bag_summary(
    bag: str | Path,
    timeline: list[TimelineEntry],
    with_label: int,
    index: LabelIndex[Path],
) -> dict[str, object]:
    return {
        "bag": str(bag),
        "frames": len(timeline),
        "frames_with_label": with_label,
        "frames_without_label": len(timeline) - with_label,
        "labels_without_frame": len(index.labels_without_frame),
        "stamps_frames_without_label": [e.stamp_ns for e in timeline if not e.has_label][
            :LISTED_STAMPS
        ],
        "stamps_labels_without_frame": index.labels_without_frame[:LISTED_STAMPS],
    }
