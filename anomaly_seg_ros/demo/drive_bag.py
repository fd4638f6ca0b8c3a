"""Write a synthetic drive as a rosbag2 (MCAP by default) with ``rosbags``.

Three ``sensor_msgs/Image`` topics, one message each per frame, all with the same header
(stamp and ``frame_id``) and bag time = header stamp:

* ``/camera/image_raw``: ``rgb8`` camera image;
* ``/ground_truth/anomaly``: ``mono8``, 0 = in-distribution, 1 = anomaly, 255 = void
  (what ``anomaly-seg bag evaluate --label-topic`` reads);
* ``/ground_truth/semantic``: ``mono8`` Cityscapes train IDs, 255 = void.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from rosbags.typesys.store import Typestore

from anomaly_seg_ros.demo.drive import DriveFrame
from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.io.bags import IMAGE_TYPE, create_bag, typestore

CAMERA_TOPIC = "/camera/image_raw"
ANOMALY_TOPIC = "/ground_truth/anomaly"
SEMANTIC_TOPIC = "/ground_truth/semantic"
FRAME_ID = "camera"


@dataclass
class DriveBagSummary:
    """What was written.

    :param path: the bag folder.
    :param frames: frames written (messages per topic).
    :param clips: scenes in the drive.
    :param stamps_ns: header stamps, in order.
    :param topics: topic -> encoding.
    :param height: image rows.
    :param width: image columns.
    :param anomaly_fraction: mean fraction of anomalous pixels per frame.
    """

    path: Path
    frames: int = 0
    clips: int = 0
    stamps_ns: list[int] = field(default_factory=list)
    topics: dict[str, str] = field(default_factory=dict)
    height: int = 0
    width: int = 0
    anomaly_fraction: float = 0.0


def _image(store: Typestore, stamp_ns: int, array: np.ndarray, encoding: str) -> object:
    """A rosbags ``sensor_msgs/msg/Image`` of a contiguous (H, W[, 3]) uint8 array."""
    time_class = store.types["builtin_interfaces/msg/Time"]
    header_class = store.types["std_msgs/msg/Header"]
    image_class = store.types[IMAGE_TYPE]
    seconds, nanoseconds = divmod(stamp_ns, 1_000_000_000)
    header = header_class(stamp=time_class(sec=seconds, nanosec=nanoseconds), frame_id=FRAME_ID)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    height, width = array.shape[:2]
    return image_class(
        header=header,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=array.strides[0],
        data=array.reshape(-1),
    )


def save_pngs(frames: Iterable[DriveFrame], folder: Path, every: int) -> Iterator[DriveFrame]:
    """Pass ``frames`` through, writing every ``every``-th one as PNG in the Fishyscapes
    processed layout (``original/NNNN.png`` RGB, ``labels/NNNN.png`` 0/1/255), for
    ``anomaly-seg detect`` and ``anomaly-seg evaluate``; ``every`` <= 0 writes none.

    :raises InputError: a file cannot be written.
    """
    for frame in frames:
        if every > 0 and frame.index % every == 0:
            name = f"{frame.index:04d}.png"
            for sub, array in (
                ("original", cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)),
                ("labels", frame.anomaly_label),
            ):
                (folder / sub).mkdir(parents=True, exist_ok=True)
                if not cv2.imwrite(str(folder / sub / name), array):
                    raise InputError(f"cannot write {folder / sub / name}")
        yield frame


def write_drive_bag(
    frames: Iterable[DriveFrame], path: str | Path, storage: str = "mcap"
) -> DriveBagSummary:
    """Write every frame of ``frames`` into a new bag at ``path``.

    :param storage: ``mcap`` or ``sqlite3``.
    :return: the summary.
    :raises InputError: ``path`` exists or cannot be written, or ``frames`` is empty.
    :raises ConfigError: unknown storage.
    """
    summary = DriveBagSummary(Path(path))
    store = typestore()
    encodings = {CAMERA_TOPIC: "rgb8", ANOMALY_TOPIC: "mono8", SEMANTIC_TOPIC: "mono8"}
    anomaly_sum = 0.0
    with create_bag(path, storage) as writer:
        connections = {
            topic: writer.add_connection(topic, IMAGE_TYPE, typestore=store) for topic in encodings
        }
        for frame in frames:
            arrays = {
                CAMERA_TOPIC: frame.image,
                ANOMALY_TOPIC: frame.anomaly_label,
                SEMANTIC_TOPIC: frame.train_ids,
            }
            for topic, array in arrays.items():
                message = _image(store, frame.stamp_ns, array, encodings[topic])
                data = store.serialize_cdr(message, IMAGE_TYPE)
                writer.write(connections[topic], frame.stamp_ns, data)
            summary.frames += 1
            summary.clips = frame.clip + 1
            summary.stamps_ns.append(frame.stamp_ns)
            summary.height, summary.width = frame.image.shape[:2]
            anomaly_sum += float(np.mean(frame.anomaly_label == 1))
    if summary.frames == 0:
        raise InputError(f"no frames to write into {path}; ask for at least one frame")
    summary.topics = encodings
    summary.anomaly_fraction = anomaly_sum / summary.frames
    return summary
