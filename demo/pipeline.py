"""The demo from start to end: drive bag → real ``detector_node`` over DDS → output bag →
report. :func:`run_demo` is what ``python -m demo`` runs (``make demo``; ``anomaly-seg demo``
in a checkout).

Folder written (``out_dir``, default ``output/demo``; these folders and the node log are
replaced on every run, nothing else there is touched)::

    drive_bag/      input rosbag2 (MCAP): camera + ground truth
    drive_frames/   every 10th drive frame as PNG (original/, labels/: Fishyscapes layout)
    output_bag/     recorded node outputs + /diagnostics (MCAP)
    node.log        the node's console output
    report/         report.md, report.json, overlay.mp4, contact_sheet.png,
                    evaluation/ (``anomaly-seg bag evaluate`` of the output bag: ROC/PR
                    curves, per-frame AP, timeline, gallery)
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anomaly_seg_ros.config import NODE_NAME
from anomaly_seg_ros.errors import AnomalySegError, ConfigError
from anomaly_seg_ros.model.bundled import resolve_model_path
from anomaly_seg_ros.model.sidecar import load_model_info
from anomaly_seg_ros.output_table import OBJECT_OUTPUTS

if TYPE_CHECKING:  # the ROS layer is imported only when the replay runs
    from anomaly_seg_ros.ros.lockstep import LockstepRecord
    from demo.node_process import DetectorNodeProcess

LOGGER = logging.getLogger(__name__)
NODE_PREFIX = f"/{NODE_NAME}"


@dataclass(frozen=True)
class DemoOptions:
    """Settings of one demo run (defaults: the ``make demo`` run).

    :param out_dir: output folder.
    :param model: ONNX model; None = the bundled demo model.
    :param frames: drive length.
    :param size: camera (height, width); None = the model's input size.
    :param clip_frames: frames per scene.
    :param step_m: camera motion per frame, metres.
    :param fps: frame rate of the drive's stamps.
    :param seed: drive seed.
    :param params_file: node parameters YAML (score, threshold, refinement...).
    :param node_parameters: ``-p`` overrides for the node, after ``params_file``.
    :param domain_id: ROS domain; None = a random one not in the environment.
    :param frame_timeout: seconds to wait for one frame's outputs.
    :param sheet_rows: frames on the contact sheet.
    :param png_every: also save every n-th drive frame as PNG (0 = none).
    :param progress: progress bars.
    """

    out_dir: Path = Path("output/demo")
    model: Path | None = None
    frames: int = 120
    size: tuple[int, int] | None = None
    clip_frames: int = 30
    step_m: float = 0.4
    fps: float = 10.0
    seed: int = 7
    params_file: Path | None = None
    node_parameters: dict[str, object] = field(default_factory=dict)
    domain_id: int | None = None
    frame_timeout: float = 30.0
    sheet_rows: int = 6
    png_every: int = 10
    progress: bool = True


@dataclass(frozen=True)
class DemoResult:
    """Where the run wrote things and its headline figures.

    :param report: the ``report.json`` content.
    :param files: name -> path of every file or folder written.
    """

    report: dict[str, Any]
    files: dict[str, Path]

    @property
    def frames_equal(self) -> bool:
        return bool(self.report["frames"]["equal"])


def mask_settings(options: DemoOptions) -> tuple[float, int]:
    """The node's mask threshold and ``min_area``: the model's calibrated ones (else the
    defaults), then the params file's, then ``--set``.

    :raises ConfigError: unreadable params file or a value that is not a number.
    """
    from anomaly_seg_ros.config import DetectorConfig, config_from_params_file
    from anomaly_seg_ros.model.bundled import calibrated_config

    # The node starts from the model's calibrated settings (<model>.params.yaml) too.
    config = calibrated_config(resolve_model_path(options.model)) or DetectorConfig()
    if options.params_file is not None:
        config = config_from_params_file(
            str(options.params_file), NODE_PREFIX.strip("/"), base=config
        )
    threshold = options.node_parameters.get("threshold", config.threshold)
    min_area = options.node_parameters.get("min_area", config.min_area)
    try:
        return float(threshold), int(min_area)  # type: ignore[arg-type, call-overload]
    except ValueError as error:
        raise ConfigError(
            f"threshold {threshold!r} or min_area {min_area!r} is not a number"
        ) from error


def _fresh_folder(out_dir: Path) -> dict[str, Path]:
    files = {
        "drive_bag": out_dir / "drive_bag",
        "drive_frames": out_dir / "drive_frames",
        "output_bag": out_dir / "output_bag",
        "node_log": out_dir / "node.log",
        "report": out_dir / "report",
        "evaluation": out_dir / "report" / "evaluation",
    }
    for path in files.values():
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    files["report"].mkdir(parents=True)
    return files


def run_demo(options: DemoOptions) -> DemoResult:
    """Run the whole demo; see the module docstring for what is written.

    :raises ModelError: no model.
    :raises BackendError: the node could not start or died (its log tail is logged).
    :raises ConfigError: bad options, or the node's topics never appeared.
    """
    try:
        from demo.drive import DriveSpec, drive_description, render_drive
    except ImportError as error:
        raise ConfigError(
            f"the demo drive comes from the synthetic world in the source checkout's "
            f"training/ folder ({error}); run the demo from the repository root"
        ) from error
    from demo.drive_bag import CAMERA_TOPIC, save_pngs, write_drive_bag
    from demo.node_process import (
        DetectorNodeProcess,
        NodeLaunch,
        fresh_domain_id,
    )
    from demo.summary import RunFacts, build_report

    model = resolve_model_path(options.model)
    info = load_model_info(model)
    height, width = options.size or info.input_size
    spec = DriveSpec(
        frames=options.frames,
        height=height,
        width=width,
        clip_frames=options.clip_frames,
        step_m=options.step_m,
        fps=options.fps,
        seed=options.seed,
    )
    spec.validate()
    threshold, min_area = mask_settings(options)
    files = _fresh_folder(Path(options.out_dir))
    phases: dict[str, float] = {}

    started = time.monotonic()
    LOGGER.info("rendering a %d-frame drive at %dx%d", spec.frames, height, width)
    frames = save_pngs(render_drive(spec), files["drive_frames"], options.png_every)
    description = drive_description(spec)
    drive = write_drive_bag(frames, files["drive_bag"], description=description)
    phases["drive"] = time.monotonic() - started

    # Our own rclpy context reads the discovery range from the environment at init.
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    domain_id = options.domain_id if options.domain_id is not None else fresh_domain_id()
    parameters: dict[str, object] = {
        "backend": "onnxruntime",
        "qos_profile": "reliable",
        "qos_depth": 10,
        "diagnostics_period": 1.0,
        **mount_parameters(description),
        **options.node_parameters,
    }
    launch = NodeLaunch(
        model, CAMERA_TOPIC, domain_id, files["node_log"], options.params_file, parameters
    )
    output_topics = _output_topics()
    started = time.monotonic()
    with DetectorNodeProcess(launch) as node:
        LOGGER.info("detector node started (ROS_DOMAIN_ID=%d); replaying the drive", domain_id)
        record = _replay(files, output_topics, domain_id, node, options)
        exit_code = node.stop()
    phases["replay"] = time.monotonic() - started
    if exit_code != 0:
        LOGGER.warning("detector node exited with %s; see %s", exit_code, files["node_log"])

    started = time.monotonic()
    facts = RunFacts(
        model=model,
        info=info,
        spec=spec,
        drive=drive,
        record=record,
        node_exit_code=exit_code,
        domain_id=domain_id,
        output_topics=output_topics,
        node_prefix=NODE_PREFIX,
        node_command=" ".join(launch.arguments()),
        threshold=threshold,
        min_area=min_area,
        machine=f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
        sheet_rows=options.sheet_rows,
    )
    report, written = build_report(files, facts, phases, started)
    return DemoResult(report, {**files, **written})


def mount_parameters(description: dict[str, object]) -> dict[str, object]:
    """The node's camera_x ... camera_yaw and vehicle_frame from a drive description's
    ``mount`` (the node then puts the demo's objects on the ground)."""
    mount = description.get("mount")
    if not isinstance(mount, dict):
        return {}
    values: dict[str, object] = {
        f"camera_{name}": float(mount[name])
        for name in ("x", "y", "z", "roll", "pitch", "yaw")
        if name in mount
    }
    if "vehicle_frame" in mount:
        values["vehicle_frame"] = str(mount["vehicle_frame"])
    return values


#: The node's object outputs the demo records beside the images: those whose message types
#: rosbags knows without this repository's messages (obstacle_points, object_markers).
RECORDED_OBJECT_OUTPUTS = tuple(
    (topic.name, topic.msgtype) for topic in OBJECT_OUTPUTS if topic.in_bag and not topic.optional
)


def _output_topics() -> tuple[str, ...]:
    from anomaly_seg_ros.io.outputs import OUTPUT_TOPICS

    return tuple(f"{NODE_PREFIX}/{topic.name}" for topic in OUTPUT_TOPICS)


def _replay(
    files: dict[str, Path],
    output_topics: tuple[str, ...],
    domain_id: int,
    node: DetectorNodeProcess,
    options: DemoOptions,
) -> LockstepRecord:
    """Lock-step replay (rclpy is imported only here, in the ROS layer)."""
    from anomaly_seg_ros.evaluation.object_truth import CAMERA_INFO_TOPIC
    from anomaly_seg_ros.ros.lockstep import LockstepOptions, replay_lockstep
    from demo.drive_bag import CAMERA_TOPIC

    lockstep = LockstepOptions(
        camera_topic=CAMERA_TOPIC,
        output_topics=output_topics,
        domain_id=domain_id,
        status_prefix=f"{NODE_PREFIX}:",
        frame_timeout=options.frame_timeout,
        progress=options.progress,
        camera_info_topic=CAMERA_INFO_TOPIC,
        extra_topics=tuple(
            (f"{NODE_PREFIX}/{name}", msgtype) for name, msgtype in RECORDED_OBJECT_OUTPUTS
        ),
    )
    try:
        return replay_lockstep(files["drive_bag"], files["output_bag"], lockstep, node.alive)
    except AnomalySegError:
        node.stop()
        LOGGER.error("detector node log (%s), last lines:\n%s", files["node_log"], node.log_tail())
        raise
