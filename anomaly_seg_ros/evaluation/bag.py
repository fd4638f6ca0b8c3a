"""Evaluate a rosbag: the node's recorded scores, or the Detector run on recorded images.

Two sources of scores:

* an **output bag** (as ``anomaly-seg bag run`` or a recorded node writes it): the
  ``…/anomaly_score`` topic (32FC1); the area timeline uses ``score > threshold``;
* an **input bag** plus a :class:`~anomaly_seg_ros.detector.Detector`: camera images
  (``Image`` or ``CompressedImage``) are run through the detector; the area timeline uses
  the detector's own mask (threshold and ``min_area`` of its config).

With a ground-truth topic (``mono8``: 0 = in-distribution, 1 = anomaly, 255 = void) paired
by ``header.stamp``, the paired frames get the same metrics and report as
``anomaly-seg evaluate``. Every frame enters the timeline plot (anomaly area and score
percentiles over time); frames without ground truth and ground truth without a frame are
counted in the report, with their stamps.
"""

from __future__ import annotations

import heapq
import logging
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.dataset_evaluation import EvaluationResult, evaluate_frames
from anomaly_seg_ros.evaluation.frames import FrameScores
from anomaly_seg_ros.evaluation.pairing import StampMatcher
from anomaly_seg_ros.io.bags import (
    COMPRESSED_TYPE,
    IMAGE_TYPE,
    deserialize,
    open_bags,
    pick_topic,
    topics_of,
)
from anomaly_seg_ros.io.messages import decode_message, float_image, label_image, stamp_ns
from anomaly_seg_ros.io.outputs import OUTPUT_SUFFIXES

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
    mode: str = "exact",
    stamp_tolerance: float = 0.0,
    component_sizes: tuple[int, int] = (500, 100),
    gallery_size: int = 4,
    progress: bool = True,
) -> EvaluationResult:
    """Evaluate one bag and write the report (plus ``timeline.png``) to ``out_dir``.

    :param score_topic: 32FC1 score topic of an output bag (default: the one topic ending
        in ``anomaly_score``); ignored with ``detector``.
    :param label_topic: mono8 ground-truth topic; None evaluates nothing but the timeline.
    :param label_bag: another bag holding ``label_topic`` (e.g. the input bag of
        ``anomaly-seg bag run``, whose output bag has no ground truth); read merged in time.
    :param image_topic: camera topic; required (or unambiguous) with ``detector``, optional
        otherwise (then used for the gallery).
    :param detector: run this Detector on the images instead of reading scores.
    :param threshold: mask threshold for the area timeline of an output bag.
    :param stamp_tolerance: seconds by which a label's stamp may differ from its frame's.
    :raises InputError: missing or ambiguous topics, bad encodings, size mismatches.
    """
    from anomaly_seg_ros.evaluation.plots import plot_timeline
    from anomaly_seg_ros.evaluation.report import write_report

    out_dir = Path(out_dir)
    timeline: list[TimelineEntry] = []
    matcher = StampMatcher(tolerance_ns=round(stamp_tolerance * 1e9))
    skipped: list[tuple[int, str]] = []  # (bag or header time, reason): malformed messages
    bags = [bag] if label_bag is None else [bag, label_bag]
    with ExitStack() as stack:
        reader = stack.enter_context(open_bags(bags))
        work = stack.enter_context(tempfile.TemporaryDirectory(prefix="bag-eval-"))
        topics = topics_of(reader)
        image_types = (IMAGE_TYPE, COMPRESSED_TYPE)
        if label_topic is not None:
            label_topic = pick_topic(topics, label_topic, (IMAGE_TYPE,))
        # Camera candidates: anything but the ground truth and the node's own outputs.
        not_camera = [t for t in topics if t == label_topic or t.endswith(OUTPUT_SUFFIXES)]
        if detector is not None:
            image_topic = pick_topic(topics, image_topic, image_types, exclude=not_camera)
            score_name = detector.config.score_type
        else:
            score_topic = pick_topic(topics, score_topic, (IMAGE_TYPE,), "anomaly_score")
            image_topic = _gallery_topic(topics, image_topic, image_types, not_camera)
            score_name = "anomaly_score"
        images = Path(work) / "_rgb"
        images.mkdir()
        # One bag-time stream per topic, merged by header stamp: the topics meet in stamp
        # order even when they come from bags recorded at different times.
        streams = [
            stamped(stack.enter_context(open_bags(bags)), topic, skipped)
            for topic in (score_topic, image_topic, label_topic)
            if topic
        ]
        frames = _paired_frames(
            heapq.merge(*streams, key=lambda item: item[0]),
            detector=detector,
            score_topic=score_topic,
            image_topic=image_topic,
            label_topic=label_topic,
            threshold=threshold,
            matcher=matcher,
            timeline=timeline,
            images=images,
            score_name=score_name,
            skipped=skipped,
        )
        result = evaluate_frames(
            frames,
            [score_name],
            dataset=Path(bag).name,
            mode=mode,
            work_dir=work,
            component_sizes=component_sizes,
            progress=progress,
        )
        paired = {frame.frame for frame in result.scores[score_name].frames}
        timeline = [
            TimelineEntry(**{**asdict(entry), "has_label": str(entry.stamp_ns) in paired})
            for entry in timeline
        ]
        result.settings.update(
            _bag_summary(bag, timeline, matcher, score_topic, image_topic, label_topic),
            malformed=len(skipped),
            malformed_messages=[list(item) for item in skipped[:LISTED_STAMPS]],
            threshold=threshold if detector is None else detector.config.threshold,
        )
        write_report(
            result,
            out_dir,
            cache=Path(work),
            load_image=lambda name: _read_rgb(images / f"{name}.png"),
            gallery_size=gallery_size,
        )
    plot_timeline(timeline, out_dir / "timeline.png", title=Path(bag).name)
    _append_summary(out_dir / "results.md", result.settings)
    return result


def _read_rgb(path: Path) -> np.ndarray:
    """A camera frame this evaluation cached, as RGB.

    :raises InputError: the file is gone or unreadable.
    """
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise InputError(f"cannot read the cached frame {path}")
    return bgr[..., ::-1]


def stamped(
    reader: Any, topic: str, skipped: list[tuple[int, str]]
) -> Iterator[tuple[int, str, Any]]:
    """(header stamp, topic, message) of one topic in bag-time order.

    Scores, camera images and ground truth are read as one such stream each, merged by
    header stamp, so they meet in stamp order whatever times their bags were recorded at
    (the drive bag at header times, the node's output bag at replay time): memory stays
    at a few messages. Within a topic, stamps follow bag time on any sane recording; a
    little disorder is absorbed by the matcher's pending items.
    """
    connections = [c for c in reader.connections if c.topic == topic]
    for connection, timestamp, raw in reader.messages(connections=connections):
        try:
            message = deserialize(reader, raw, connection, timestamp)
        except InputError as error:
            LOGGER.warning("%s; skipped", error)
            skipped.append((timestamp, str(error)))
            continue
        yield stamp_ns(message), topic, message


def _paired_frames(
    messages: Iterator[tuple[int, str, Any]],
    *,
    detector: Any,
    score_topic: str | None,
    image_topic: str | None,
    label_topic: str | None,
    threshold: float,
    matcher: StampMatcher,
    timeline: list[TimelineEntry],
    images: Path,
    score_name: str,
    skipped: list[tuple[int, str]],
) -> Iterator[FrameScores]:
    """Frames with ground truth, in bag order; every frame is appended to ``timeline``."""
    pending_rgb: dict[int, np.ndarray] = {}
    for stamp, topic, message in messages:
        try:
            paired = _offer(
                stamp, topic, message, detector, image_topic, label_topic, threshold, matcher,
                timeline, pending_rgb,
            )  # fmt: skip
        except InputError as error:  # a malformed image: listed, the next one goes on
            LOGGER.warning("%s at stamp %d skipped: %s", topic, stamp, error)
            skipped.append((stamp, f"{topic}: {error}"))
            continue
        if paired is not None:
            frame_stamp, (score, frame_rgb), label = paired
            picture: np.ndarray | None = frame_rgb
            if picture is None:
                picture = pending_rgb.pop(frame_stamp, None)
            if picture is None:
                picture = np.full((*score.shape, 3), 64, dtype=np.uint8)
            cv2.imwrite(str(images / f"{frame_stamp}.png"), picture[..., ::-1])
            yield FrameScores(str(frame_stamp), label, {score_name: score})
    matcher.finish()


def _offer(
    stamp: int,
    topic: str,
    message: Any,
    detector: Any,
    image_topic: str | None,
    label_topic: str | None,
    threshold: float,
    matcher: StampMatcher,
    timeline: list[TimelineEntry],
    pending_rgb: dict[int, np.ndarray],
) -> tuple[int, Any, np.ndarray] | None:
    """Decode one message and offer it to the matcher; returns a pair when one forms.

    :raises InputError: the message is malformed (nothing was recorded for it).
    """
    if topic == label_topic:
        return matcher.add_label(stamp, label_image(message))
    if detector is not None and topic == image_topic:
        rgb = decode_message(message)
        result = detector.detect(rgb)
        timeline.append(_entry(stamp, result.score, result.mask))
        return matcher.add_frame(stamp, (result.score, rgb)) if label_topic else None
    if topic == image_topic:
        # Output bag with camera images: keep the latest few for the gallery only.
        pending_rgb[stamp] = decode_message(message)
        while len(pending_rgb) > matcher.max_pending:
            pending_rgb.pop(next(iter(pending_rgb)))
        return None
    score = float_image(message)
    timeline.append(_entry(stamp, score, score > np.float32(threshold)))
    return matcher.add_frame(stamp, (score, None)) if label_topic else None


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
    matcher: StampMatcher,
    score_topic: str | None,
    image_topic: str | None,
    label_topic: str | None,
) -> dict[str, object]:
    with_label = sum(entry.has_label for entry in timeline)
    return {
        "bag": str(bag),
        "score_topic": score_topic,
        "image_topic": image_topic,
        "label_topic": label_topic,
        "frames": len(timeline),
        "frames_with_label": with_label,
        "frames_without_label": len(timeline) - with_label,
        "labels_without_frame": len(matcher.labels_without_frame),
        "stamps_frames_without_label": [e.stamp_ns for e in timeline if not e.has_label][
            :LISTED_STAMPS
        ],
        "stamps_labels_without_frame": matcher.labels_without_frame[:LISTED_STAMPS],
    }


def _append_summary(markdown: Path, settings: dict[str, object]) -> None:
    lines = [
        "",
        "## Bag",
        "",
        f"* bag: `{settings['bag']}`; scores from `{settings['score_topic'] or 'detector'}`"
        f", ground truth `{settings['label_topic']}`",
        f"* frames in: {settings['frames']}, paired with ground truth: "
        f"{settings['frames_with_label']}, unpaired: {settings['frames_without_label']}; "
        f"ground-truth messages without a frame: {settings['labels_without_frame']}",
        f"* malformed messages skipped: {settings.get('malformed', 0)}",
        "* metrics use the frames with ground truth; `timeline.png` shows every frame",
        "",
    ]
    with open(markdown, "a") as stream:
        stream.write("\n".join(lines))
