"""Write the two bags of a long replay, for measuring ``anomaly-seg bag evaluate``'s memory.

The demo's case at camera size: a drive bag with the ground truth logged at its header
times, and an output bag with the node's 32FC1 scores recorded an hour later (replay
time), so read in bag time every label comes before every score (``--shuffle``: both also
recorded out of stamp order). Measure with public
tools, e.g.::

    python benchmarks/bag_evaluate_memory.py /tmp/bags --frames 200
    /usr/bin/time -v anomaly-seg bag evaluate /tmp/bags/out /tmp/report --mode binned \\
        --label-topic /ground_truth/anomaly --label-bag /tmp/bags/drive --no-progress

Disk: (4 + 1) bytes per pixel and frame for the bags (200 frames at 1024×2048: 2.1 GB),
and the evaluation's own component cache (5 bytes per pixel and frame) while it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from anomaly_seg_ros.io.bags import BAG_VERSION, IMAGE_TYPE, typestore
from anomaly_seg_ros.io.image import array_to_raw
from anomaly_seg_ros.io.messages import bag_image

LABEL_TOPIC = "/ground_truth/anomaly"
SCORE_TOPIC = "/anomaly_seg_detector/anomaly_score"
START_NS = 1_700_000_000 * 10**9


def frame(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(score float32, label uint8): three obstacles of random size on a road, void on top."""
    label = np.zeros((height, width), np.uint8)
    label[: height // 8] = 255
    for side in rng.integers(8, height // 6, size=3):
        top = int(rng.integers(height // 2, height - side))
        left = int(rng.integers(0, width - side))
        label[top : top + side, left : left + side] = 1
    score = rng.standard_normal((height, width), np.float32)
    score += 2.0 * (label == 1)
    return score, label


def write_bags(
    folder: Path, frames: int, height: int, width: int, period_ns: int, shuffle: bool = False
) -> None:
    """``folder/drive`` (labels at header times) and ``folder/out`` (scores 1 h later).

    :param shuffle: record both topics in a shuffled stamp order (bag times still rising).
    """
    store = typestore()
    image_class = store.types[IMAGE_TYPE]
    header_class = store.types["std_msgs/msg/Header"]
    time_class = store.types["builtin_interfaces/msg/Time"]
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    with (
        Writer(folder / "drive", version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP) as drive,
        Writer(folder / "out", version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP) as out,
    ):
        labels = drive.add_connection(LABEL_TOPIC, IMAGE_TYPE, typestore=store)
        scores = out.add_connection(SCORE_TOPIC, IMAGE_TYPE, typestore=store)
        order = rng.permutation(frames) if shuffle else np.arange(frames)
        for position, index in enumerate(order.tolist()):
            stamp = START_NS + index * period_ns
            recorded = START_NS + position * period_ns
            header = header_class(
                stamp=time_class(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="camera"
            )
            score, label = frame(rng, height, width)
            for writer, connection, array, encoding, bag_time in (
                (drive, labels, label, "mono8", recorded),
                (out, scores, score, "32FC1", recorded + 3600 * 10**9),
            ):
                message = bag_image(image_class, array_to_raw(array, encoding), header)
                writer.write(connection, bag_time, store.serialize_cdr(message, IMAGE_TYPE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where drive/ and out/ are written")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--size", type=int, nargs=2, default=(1024, 2048), metavar=("H", "W"))
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--shuffle", action="store_true", help="record in shuffled stamp order")
    args = parser.parse_args()
    write_bags(args.folder, args.frames, *args.size, round(1e9 / args.fps), args.shuffle)


if __name__ == "__main__":
    main()
