"""Write a synthetic drive as a rosbag2 (MCAP by default) with ``rosbags``.

Three ``sensor_msgs/Image`` topics, one message each per frame, all with the same header
(stamp and ``frame_id``) and bag time = header stamp:

* ``/camera/image_raw``: ``rgb8`` camera image;
* ``/ground_truth/anomaly``: ``mono8``, 0 = in-distribution, 1 = anomaly, 255 = void
  (what ``anomaly-seg bag evaluate --label-topic`` reads);
* ``/ground_truth/semantic``: ``mono8`` Cityscapes train IDs, 255 = void.

With the drive's camera given, also per frame ``/camera/camera_info``
(``sensor_msgs/CameraInfo``, same header) and ``/ground_truth/obstacles`` (``std_msgs/String``,
JSON: :mod:`anomaly_seg_ros.evaluation.object_truth`), and ``description.json`` in the bag
folder (the camera's mount in the vehicle frame and its intrinsics).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rosbags.typesys.store import Typestore

from anomaly_seg_ros.atomic import atomic_write_bytes
from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.object_truth import (
    CAMERA_INFO_TOPIC,
    DESCRIPTION_FILE,
    OBSTACLES_TOPIC,
    obstacles_to_json,
)
from anomaly_seg_ros.io.bags import CAMERA_INFO_TYPE, IMAGE_TYPE, create_bag, typestore
from demo.drive import DriveFrame

STRING_TYPE = "std_msgs/msg/String"

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
    :param mount: the camera's mount (``CameraMount`` fields), when a description was given.
    """

    path: Path
    frames: int = 0
    clips: int = 0
    stamps_ns: list[int] = field(default_factory=list)
    topics: dict[str, str] = field(default_factory=dict)
    height: int = 0
    width: int = 0
    anomaly_fraction: float = 0.0
    mount: dict[str, Any] | None = None


def _header(store: Typestore, stamp_ns: int) -> Any:
    time_class = store.types["builtin_interfaces/msg/Time"]
    header_class = store.types["std_msgs/msg/Header"]
    seconds, nanoseconds = divmod(stamp_ns, 1_000_000_000)
    return header_class(stamp=time_class(sec=seconds, nanosec=nanoseconds), frame_id=FRAME_ID)


def camera_info_message(store: Typestore, stamp_ns: int, camera: dict[str, Any]) -> object:
    """A rosbags ``sensor_msgs/msg/CameraInfo`` of a description's ``camera`` entry."""
    k = np.asarray(camera["k"], np.float64)
    projection = np.zeros((3, 4))
    projection[:, :3] = k.reshape(3, 3)
    roi_class = store.types["sensor_msgs/msg/RegionOfInterest"]
    return store.types[CAMERA_INFO_TYPE](
        header=_header(store, stamp_ns),
        height=int(camera["height"]),
        width=int(camera["width"]),
        distortion_model=camera["distortion_model"] or "plumb_bob",
        d=np.asarray(camera["d"] or [0.0] * 5, np.float64),
        k=k,
        r=np.eye(3).reshape(-1),
        p=projection.reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=roi_class(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )


def _image(store: Typestore, stamp_ns: int, array: np.ndarray, encoding: str) -> object:
    """A rosbags ``sensor_msgs/msg/Image`` of a contiguous (H, W[, 3]) uint8 array."""
    image_class = store.types[IMAGE_TYPE]
    header = _header(store, stamp_ns)
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
    frames: Iterable[DriveFrame],
    path: str | Path,
    storage: str = "mcap",
    description: dict[str, Any] | None = None,
) -> DriveBagSummary:
    """Write every frame of ``frames`` into a new bag at ``path``.

    :param storage: ``mcap`` or ``sqlite3``.
    :param description: the drive's description (``drive.drive_description``): adds the
        CameraInfo and obstacle topics and ``description.json``.
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
        if description is not None:
            info = writer.add_connection(CAMERA_INFO_TOPIC, CAMERA_INFO_TYPE, typestore=store)
            truth = writer.add_connection(OBSTACLES_TOPIC, STRING_TYPE, typestore=store)
        for frame in frames:
            if description is not None:
                message = camera_info_message(store, frame.stamp_ns, description["camera"])
                data = store.serialize_cdr(message, CAMERA_INFO_TYPE)
                writer.write(info, frame.stamp_ns, data)
                text = obstacles_to_json(frame.stamp_ns, list(frame.obstacles))
                data = store.serialize_cdr(store.types[STRING_TYPE](data=text), STRING_TYPE)
                writer.write(truth, frame.stamp_ns, data)
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
    if description is not None:
        content = json.dumps(description, indent=2, sort_keys=True).encode()
        atomic_write_bytes(Path(path) / DESCRIPTION_FILE, content)
        summary.topics = {**encodings, CAMERA_INFO_TOPIC: "CameraInfo", OBSTACLES_TOPIC: "JSON"}
        summary.mount = dict(description["mount"])
    summary.anomaly_fraction = anomaly_sum / summary.frames
    return summary
