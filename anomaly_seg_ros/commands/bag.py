"""``anomaly-seg bag``: run the detector over rosbags offline, and play bags into ROS.

    anomaly-seg bag run IN_BAG OUT_BAG [--model M] [--topic T] [--storage mcap|sqlite3]
        [--outputs NAME ...] [--no-objects] [--mount X Y Z ROLL PITCH YAW]
    anomaly-seg bag play BAG [--rate X] [--topic T] [--remap TOPIC] [--loop]
    anomaly-seg bag evaluate BAG OUT_DIR [--label-topic T] [--label-bag B] [--model M]

``run`` needs no ROS installation (``rosbags`` reads and writes the bags); ``play`` needs
rclpy and is imported only when chosen.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from anomaly_seg_ros.commands.options import (
    add_detector_options,
    config_from_args,
    detector_from_args,
    model_from_args,
)
from anomaly_seg_ros.config import NODE_NAME
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.io.bags import check_topic_name
from anomaly_seg_ros.io.object_messages import BAG_OBJECT_NAMES
from anomaly_seg_ros.output_table import BAG_OUTPUT_NAMES

LOGGER = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bag",
        help="run the detector over rosbags (offline) or play a bag's images into ROS",
        description="Rosbag tools: offline detection into a new bag, and playback.",
    )
    actions = parser.add_subparsers(dest="bag_action", metavar="ACTION", required=True)

    run = actions.add_parser(
        "run",
        help="every image frame of a bag through the detector, into a new bag",
        description="Read a rosbag2 (sqlite3/MCAP) or ROS 1 bag, run every frame of its "
        "image topic through the Detector and write a new bag with the input images and "
        "all result topics, one result per frame, same header stamps and bag times; "
        "the object outputs (obstacle_points, object_markers, objects) get ground "
        "positions from the bag's CameraInfo and the camera mount.",
    )
    run.add_argument("input_bag", type=Path, help="input bag (rosbag2 folder or .bag)")
    run.add_argument("output_bag", type=Path, help="output rosbag2 folder (must not exist)")
    add_detector_options(run)
    run.add_argument("--topic", help="image topic (default: the bag's only image topic)")
    run.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    run.add_argument(
        "--outputs",
        nargs="+",
        choices=BAG_OUTPUT_NAMES,
        help="result topics to write (default: all; objects where anomaly_seg_msgs is found)",
    )
    run.add_argument(
        "--no-objects", action="store_true", help="no object topics (no object layer)"
    )
    run.add_argument(
        "--mount",
        type=float,
        nargs=6,
        metavar=("X", "Y", "Z", "ROLL", "PITCH", "YAW"),
        help="camera pose in the vehicle frame (m, rad; tf2 rpy) for ground positions "
        "(default: the bag folder's description.json)",
    )
    run.add_argument(
        "--vehicle-frame", default="base_link", help="frame of --mount, points and markers"
    )
    run.add_argument(
        "--camera-info-topic",
        help="CameraInfo topic (default: camera_info beside the image topic)",
    )
    run.add_argument("--prefix", default=f"/{NODE_NAME}", help="namespace of result topics")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(func=run_command)

    play = actions.add_parser(
        "play",
        help="publish a bag's image topic at the recorded or scaled rate (needs rclpy)",
        description="Publish the image messages of a bag with rclpy, paced by their bag "
        "timestamps, for feeding a live node where `ros2 bag play` is not installed.",
    )
    play.add_argument("bag", type=Path, help="rosbag2 folder (sqlite3/MCAP) or ROS 1 .bag")
    play.add_argument("--topic", help="image topic in the bag (default: its only one)")
    play.add_argument("--rate", type=float, default=1.0, help="speed factor; 0 = no pacing")
    play.add_argument("--remap", help="publish under this topic instead of the recorded one")
    play.add_argument("--loop", action="store_true", help="repeat until Ctrl-C")
    play.add_argument(
        "--wait-for-subscriber",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to this long for a subscriber before starting",
    )
    play.add_argument("--qos", choices=("reliable", "sensor_data"), default="reliable")
    play.add_argument("--no-progress", action="store_true", help="no progress bar")
    play.set_defaults(func=play_command)

    evaluate = actions.add_parser(
        "evaluate",
        help="metrics and anomaly timeline of a bag (an output bag, or images + --model)",
        description="Evaluate the anomaly scores of an output bag (from `bag run` or a "
        "recorded node), or run --model on an input bag's images; ground truth (mono8, "
        "0 = ID, 1 = anomaly, 255 = void) is paired with the frames by header stamp.",
    )
    evaluate.add_argument("bag", type=Path, help="bag with scores, or images with --model")
    evaluate.add_argument("out_dir", type=Path, help="report folder")
    evaluate.add_argument("--score-topic", help="32FC1 score topic (default: *anomaly_score)")
    evaluate.add_argument("--label-topic", help="mono8 ground-truth topic")
    evaluate.add_argument("--label-bag", type=Path, help="another bag with --label-topic")
    evaluate.add_argument("--image-topic", help="camera topic (detector input, gallery)")
    add_detector_options(
        evaluate,
        model_help="run this model on the bag's images",
        only_with_model=True,
        threshold_help="mask threshold for the timeline and the object figures",
    )
    evaluate.add_argument("--mode", choices=("exact", "binned"), default="exact")
    evaluate.add_argument(
        "--stamp-tolerance", type=float, default=0.0, help="seconds labels may be off"
    )
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=evaluate_command)


def run_command(args: argparse.Namespace) -> int:
    from anomaly_seg_ros.io.bag_run import default_outputs, run_bag
    from anomaly_seg_ros.objects import CameraMount

    check_topic_name(args.prefix, "--prefix")
    if args.camera_info_topic is not None:
        check_topic_name(args.camera_info_topic, "--camera-info-topic")
    outputs = list(args.outputs or default_outputs())
    if args.no_objects:
        outputs = [name for name in outputs if name not in BAG_OBJECT_NAMES]
    mount = None
    if args.mount is not None:
        x, y, z, roll, pitch, yaw = args.mount
        mount = CameraMount(x, y, z, roll, pitch, yaw, vehicle_frame=args.vehicle_frame)
    with detector_from_args(args) as det:
        report = run_bag(
            det,
            args.input_bag,
            args.output_bag,
            topic=args.topic,
            storage=args.storage,
            outputs=outputs,
            prefix=args.prefix,
            progress=not args.no_progress,
            mount=mount,
            camera_info_topic=args.camera_info_topic,
        )
    LOGGER.info(
        "%s: %d frames in, %d frames out on %s -> %s",
        report.topic,
        report.frames_in,
        report.frames_out,
        ", ".join(report.output_topics),
        args.output_bag,
    )
    for timestamp, reason in report.malformed:
        LOGGER.error("frame at bag time %d ns not processed: %s", timestamp, reason)
    return 0 if report.complete else 1


def play_command(args: argparse.Namespace) -> int:
    from anomaly_seg_ros.ros.bag_player import PlayOptions, play_bag

    if not math.isfinite(args.rate) or args.rate < 0:
        raise ConfigError(f"--rate must be >= 0 (0 = as fast as possible), got {args.rate}")
    if not math.isfinite(args.wait_for_subscriber) or args.wait_for_subscriber < 0:
        raise ConfigError(f"--wait-for-subscriber must be >= 0 s, got {args.wait_for_subscriber}")
    if args.remap is not None:
        check_topic_name(args.remap, "--remap")
    options = PlayOptions(
        topic=args.topic,
        rate=args.rate,
        publish_topic=args.remap,
        loop=args.loop,
        wait_for_subscriber=args.wait_for_subscriber,
        qos_profile=args.qos,
        progress=not args.no_progress,
    )
    skipped: list[tuple[int, str]] = []
    count = play_bag(args.bag, options, undeserializable=skipped)
    LOGGER.info("published %d messages from %s", count, args.bag)
    for timestamp, reason in skipped:
        LOGGER.error("message at bag time %d ns not published: %s", timestamp, reason)
    return 1 if skipped else 0


def evaluate_command(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from anomaly_seg_ros.evaluation.bag import evaluate_bag

    if not math.isfinite(args.stamp_tolerance) or args.stamp_tolerance < 0:
        raise ConfigError(f"--stamp-tolerance must be >= 0 seconds, got {args.stamp_tolerance}")

    # with an output bag: the node's threshold and min_area (model file, then --params)
    config = config_from_args(args, model_from_args(args))
    detector = detector_from_args(args, config) if args.model else nullcontext()
    with detector:
        evaluate_bag(
            args.bag,
            args.out_dir,
            score_topic=args.score_topic,
            label_topic=args.label_topic,
            label_bag=args.label_bag,
            image_topic=args.image_topic,
            detector=detector if args.model else None,
            threshold=config.threshold,
            min_area=config.min_area,
            mode=args.mode,
            stamp_tolerance=args.stamp_tolerance,
            progress=not args.no_progress,
        )
    LOGGER.info("report written to %s", args.out_dir)
    # results.md starts with frames in / paired / unpaired
    print((args.out_dir / "results.md").read_text())
    return 0
