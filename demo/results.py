"""From the drive bag and the recorded output bag to frames, counts and metrics.

Everything is read back from the two bag files (not from memory), so the report checks
what was really recorded: the output bag's header stamps per topic against the drive's,
and the node's scores and labels against the drive's ground truth, paired by stamp.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anomaly_seg_ros.evaluation.pixel_metrics import IGNORE_LABEL
from anomaly_seg_ros.evaluation.segmentation_metrics import SegmentationEvaluator
from anomaly_seg_ros.io.bags import open_bag
from anomaly_seg_ros.io.messages import decode_message, float_image, label_image, stamp_ns
from anomaly_seg_ros.model.classes import CITYSCAPES_CLASSES
from demo.drive_bag import ANOMALY_TOPIC, SEMANTIC_TOPIC

#: Node output names the report reads (the node publishes them under ``<prefix>/<name>``).
SCORE, LABELS, MASK, OVERLAY = "anomaly_score", "labels", "anomaly_mask", "overlay"


@dataclass(frozen=True)
class OutputFrame:
    """One frame as the node published it, with the drive's ground truth.

    :param index: position in the drive.
    :param stamp_ns: header stamp.
    :param score: (H, W) float32 anomaly score.
    :param labels: (H, W) uint8 predicted train IDs.
    :param mask: (H, W) bool anomaly mask.
    :param overlay: (H, W, 3) uint8 RGB overlay.
    :param anomaly_label: (H, W) uint8 0/1/255 ground truth.
    :param train_ids: (H, W) uint8 semantic ground truth, 255 = void.
    """

    index: int
    stamp_ns: int
    score: np.ndarray
    labels: np.ndarray
    mask: np.ndarray
    overlay: np.ndarray
    anomaly_label: np.ndarray
    train_ids: np.ndarray


@dataclass
class FrameCounts:
    """Frames in and out, per output topic, from the bag files.

    :param frames_in: camera frames in the drive bag.
    :param stamps_in: their header stamps.
    :param frames_out: output topic -> messages in the output bag.
    :param missing: output topic -> drive stamps without a message.
    :param extra: output topic -> messages whose stamp is not a drive stamp, or repeated.
    """

    frames_in: int = 0
    stamps_in: list[int] = field(default_factory=list)
    frames_out: dict[str, int] = field(default_factory=dict)
    missing: dict[str, list[int]] = field(default_factory=dict)
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def equal(self) -> bool:
        """Every output topic has exactly one message per input frame, same stamps."""
        return all(
            count == self.frames_in and not self.missing[topic] and not self.extra[topic]
            for topic, count in self.frames_out.items()
        )


def read_truth(drive_bag: str | Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Header stamp -> (anomaly label 0/1/255, semantic train IDs) of the drive bag."""
    truth: dict[int, dict[str, np.ndarray]] = defaultdict(dict)
    with open_bag(drive_bag) as reader:
        wanted = [c for c in reader.connections if c.topic in (ANOMALY_TOPIC, SEMANTIC_TOPIC)]
        for connection, _, raw in reader.messages(connections=wanted):
            message = reader.deserialize(raw, connection.msgtype)
            truth[stamp_ns(message)][connection.topic] = label_image(message)
    return {s: (maps[ANOMALY_TOPIC], maps[SEMANTIC_TOPIC]) for s, maps in truth.items()}


def count_frames(
    drive_bag: str | Path, camera_topic: str, output_bag: str | Path, output_topics: Sequence[str]
) -> FrameCounts:
    """Compare the header stamps of ``output_topics`` with the drive's camera frames."""
    counts = FrameCounts()
    with open_bag(drive_bag) as reader:
        cameras = [c for c in reader.connections if c.topic == camera_topic]
        for connection, _, raw in reader.messages(connections=cameras):
            counts.stamps_in.append(stamp_ns(reader.deserialize(raw, connection.msgtype)))
    counts.frames_in = len(counts.stamps_in)
    drive = set(counts.stamps_in)
    seen: dict[str, list[int]] = {topic: [] for topic in output_topics}
    with open_bag(output_bag) as reader:
        chosen = [c for c in reader.connections if c.topic in seen]
        for connection, _, raw in reader.messages(connections=chosen):
            message = reader.deserialize(raw, connection.msgtype)
            seen[connection.topic].append(stamp_ns(message))
    for topic, stamps in seen.items():
        counts.frames_out[topic] = len(stamps)
        counts.missing[topic] = sorted(drive - set(stamps))
        counts.extra[topic] = len(stamps) - len(set(stamps) & drive)
    return counts


def output_frames(
    output_bag: str | Path,
    topics: dict[str, str],
    truth: dict[int, tuple[np.ndarray, np.ndarray]],
) -> Iterator[OutputFrame]:
    """The frames of the output bag that have every output and ground truth, in drive order.

    :param topics: output name (:data:`SCORE`, :data:`LABELS`, :data:`MASK`,
        :data:`OVERLAY`) -> topic in the bag.
    :param truth: from :func:`read_truth`.
    """
    order = {stamp: index for index, stamp in enumerate(sorted(truth))}
    by_topic = {topic: name for name, topic in topics.items()}
    pending: dict[int, dict[str, object]] = defaultdict(dict)
    with open_bag(output_bag) as reader:
        chosen = [c for c in reader.connections if c.topic in by_topic]
        for connection, _, raw in reader.messages(connections=chosen):
            message = reader.deserialize(raw, connection.msgtype)
            stamp = stamp_ns(message)
            if stamp not in truth:
                continue
            parts = pending[stamp]
            parts[by_topic[connection.topic]] = message
            if len(parts) < len(topics):
                continue
            del pending[stamp]
            anomaly_label, train_ids = truth[stamp]
            yield OutputFrame(
                index=order[stamp],
                stamp_ns=stamp,
                score=float_image(parts[SCORE]),
                labels=label_image(parts[LABELS]),
                mask=label_image(parts[MASK]) > 0,
                overlay=decode_message(parts[OVERLAY]),
                anomaly_label=anomaly_label,
                train_ids=train_ids,
            )


class DriveMetrics:
    """mIoU of the labels and the published mask's precision/recall/IoU against the drive's
    ground truth, accumulated frame by frame.

    The anomaly score's metrics (pixel and object level) are not here: the report takes
    them from the bag evaluation (:func:`~anomaly_seg_ros.evaluation.bag.evaluate_bag`),
    so ``report.md`` and ``evaluation/results.md`` are one computation.
    """

    def __init__(self, class_names: Sequence[str] = CITYSCAPES_CLASSES) -> None:
        self.segmentation = SegmentationEvaluator(tuple(class_names))
        self.mask_counts = np.zeros(3, np.int64)  # true positives, false positives, false neg.
        self.frames = 0

    def process(self, frame: OutputFrame) -> None:
        """Add one frame."""
        self.segmentation.process(frame.labels, frame.train_ids)
        valid = frame.anomaly_label != IGNORE_LABEL
        truth = frame.anomaly_label == 1
        self.mask_counts += [
            np.count_nonzero(frame.mask & truth),
            np.count_nonzero(frame.mask & ~truth & valid),
            np.count_nonzero(~frame.mask & truth),
        ]
        self.frames += 1

    def summary(self) -> dict[str, object]:
        """Plain JSON values: ``mask`` (the node's published mask), ``segmentation``."""
        true_positive, false_positive, false_negative = (int(v) for v in self.mask_counts)

        def ratio(numerator: int, denominator: int) -> float:
            return numerator / denominator if denominator else float("nan")

        return {
            "mask": {
                "frames": self.frames,
                "precision": ratio(true_positive, true_positive + false_positive),
                "recall": ratio(true_positive, true_positive + false_negative),
                "iou": ratio(true_positive, true_positive + false_positive + false_negative),
            },
            "segmentation": self.segmentation.evaluate().to_dict(),
        }
