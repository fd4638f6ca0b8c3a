"""An int8 version of the bundled demo model: static QDQ, per channel, with its own threshold.

Steps (rerun after the fp32 demo model changes; everything is rendered, nothing fetched):

1. quantization calibration: ``--calibration-frames`` test-anomaly frames of the synthetic
   world with seed ``--calibration-seed`` (not the demo world's seed 0, whose frames train
   and test the model, and not the demo drive's seed 7), fed to
   ``onnxruntime.quantization.quantize_static`` (QDQ, per-channel int8 weights, int8
   activations, MinMax ranges) of the network body; the anomaly head (the logits'
   upsampling, argmax, logsumexp, entropy) is excluded and stays float32;
2. threshold: ``anomaly-seg calibrate`` with the demo's parameters file on
   ``--threshold-frames`` frames of another world seed (``--threshold-seed``), at the
   best pixel F1 like the fp32 model's (``demo/model/settings.py``), written as
   ``<out>.params.yaml``;
3. the sidecar (``precision`` stays fp32: inputs, outputs and the summary are float32; the
   provenance records the quantization) and the fp32 model's SML statistics beside it;
4. figures, fp32 vs int8 on the demo drive (seed 7): label agreement, pixel AP / FPR95 /
   AUROC of the demo settings, and ONNX Runtime CPU inference time, frame by frame in turn.

    python -m demo.model.quantize [--model models/demo/demo.onnx] [--out ...demo_int8.onnx]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx

LOGGER = logging.getLogger("demo.model.quantize")
DEMO = Path("models/demo/demo.onnx")
#: World seeds of the frames the quantization and the threshold are calibrated on.
CALIBRATION_SEED = 31
THRESHOLD_SEED = 37
#: How the demo threshold is chosen (see models/demo/demo.params.yaml).
THRESHOLD_TARGET = "--best-f1"


def calibration_images(seed: int, count: int, height: int, width: int) -> list[np.ndarray]:
    """``count`` rendered test-anomaly frames (RGB uint8) of the world ``seed``."""
    from demo.synthetic.generate import render_anomaly_frame
    from demo.synthetic.scene import World

    world = World(height, width, seed)
    return [render_anomaly_frame(world, seed, index).image for index in range(count)]


class _Frames:
    """onnxruntime.quantization's CalibrationDataReader over preprocessed frames."""

    def __init__(self, images: list[np.ndarray], info: object) -> None:
        from anomaly_seg_ros.model.summary import INPUT_NAME
        from anomaly_seg_ros.pipeline.preprocess import to_network_input

        self._inputs: Iterator[dict[str, np.ndarray]] = iter(
            [{INPUT_NAME: to_network_input(image, info).copy()} for image in images]  # type: ignore[arg-type]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._inputs, None)


def head_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the anomaly head's nodes: the upsampling of the logits (the producer of
    ArgMax's input) and everything computed from it (the logit summary)."""
    argmax = [node for node in model.graph.node if node.op_type == "ArgMax"]
    if len(argmax) != 1:
        raise SystemExit("expected one ArgMax (the head's label) in the graph; re-export")
    producers = {output: node for node in model.graph.node for output in node.output}
    logits = producers[argmax[0].input[0]]
    head, values = {logits.name}, set(logits.output)
    for node in model.graph.node:  # topologically sorted: one pass finds every descendant
        if node.name not in head and values.intersection(node.input):
            head.add(node.name)
            values.update(node.output)
    return sorted(head)


def quantize(model: Path, out: Path, images: list[np.ndarray], conv_only: bool = False) -> None:
    """Static QDQ int8 (per-channel weights) of the network body of ``model``; the anomaly
    head (upsampled logits → summary) stays float32.

    :param conv_only: quantize only the convolutions (instead of every op ONNX Runtime can).
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from anomaly_seg_ros.model.sidecar import load_model_info

    network = onnx.load(os.fspath(model))
    names = [node.name for node in network.graph.node]
    if len(set(names)) != len(names) or "" in names:
        raise SystemExit(f"{model}: nodes need unique names to keep the head in float")
    quantize_static(
        os.fspath(model),
        os.fspath(out),
        _Frames(images, load_model_info(model)),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["Conv"] if conv_only else None,
        nodes_to_exclude=head_nodes(network),
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )


def write_threshold_set(folder: Path, seed: int, count: int, height: int, width: int) -> None:
    """Labelled frames (Fishyscapes processed layout) for ``anomaly-seg calibrate``."""
    from demo.synthetic.generate import render_anomaly_frame
    from demo.synthetic.scene import World
    from demo.synthetic.writers import write_anomaly_frame

    world = World(height, width, seed)
    for index in range(count):
        write_anomaly_frame(folder, index, render_anomaly_frame(world, seed, index))


def calibrate_threshold(model: Path, frames: Path, base_params: Path, out: Path) -> None:
    """``anomaly-seg calibrate`` of ``model`` on ``frames`` (:data:`THRESHOLD_TARGET`)."""
    from anomaly_seg_ros.cli import main as cli

    command = ["calibrate", os.fspath(frames), "--model", os.fspath(model)]
    command += ["--backend", "onnxruntime", "--params", os.fspath(base_params)]
    command += [THRESHOLD_TARGET, "--out", os.fspath(out), "--no-progress"]
    if cli(command) != 0:
        raise SystemExit(f"threshold calibration of {model} failed; nothing written")


def compare(models: dict[str, tuple[Path, Path]], frames: int) -> dict[str, object]:
    """fp32 vs int8 on the demo drive, each with its params file.

    :param models: ``fp32`` and ``int8`` → (model, params file).
    """
    from anomaly_seg_ros.config import config_from_params_file
    from anomaly_seg_ros.detector import Detector
    from anomaly_seg_ros.evaluation.pixel_metrics import ExactPixelEvaluator
    from anomaly_seg_ros.model.sidecar import load_model_info
    from demo.drive import DriveSpec, render_drive

    info = load_model_info(models["fp32"][0])
    spec = DriveSpec(frames=frames, height=info.input_height, width=info.input_width)
    detectors = {
        name: Detector.from_path(path, config_from_params_file(os.fspath(params)), "onnxruntime")
        for name, (path, params) in models.items()
    }
    evaluators = {name: ExactPixelEvaluator() for name in models}
    seconds: dict[str, list[float]] = {name: [] for name in models}
    agreement, pixels, mask_agreement = 0, 0, 0
    hits = {name: [0, 0, 0, 0] for name in models}  # TP, positives, FP, negatives
    try:
        for frame in render_drive(spec):
            results = {}
            for name, detector in detectors.items():
                results[name] = detector.detect(frame.image)
                seconds[name].append(results[name].timings["inference"])
                evaluators[name].process(results[name].score, frame.anomaly_label)
                mask, label = results[name].mask, frame.anomaly_label
                counts = hits[name]
                counts[0] += int(np.count_nonzero(mask & (label == 1)))
                counts[1] += int(np.count_nonzero(label == 1))
                counts[2] += int(np.count_nonzero(mask & (label == 0)))
                counts[3] += int(np.count_nonzero(label == 0))
            agreement += int(np.count_nonzero(results["fp32"].labels == results["int8"].labels))
            mask_agreement += int(np.count_nonzero(results["fp32"].mask == results["int8"].mask))
            pixels += results["fp32"].labels.size
    finally:
        for detector in detectors.values():
            detector.close()
    figures: dict[str, object] = {
        "frames": frames,
        "drive_seed": spec.seed,
        "label_agreement": agreement / pixels,
        "mask_agreement": mask_agreement / pixels,
        "load_average_1min": os.getloadavg()[0],
    }
    for name, evaluator in evaluators.items():
        metrics = evaluator.evaluate()
        figures[name] = {
            "ap": metrics.average_precision,
            "fpr95": metrics.fpr_at_95_tpr,
            "auroc": metrics.auroc,
            # at the model's own calibrated threshold (its params file)
            "tpr_at_threshold": hits[name][0] / max(hits[name][1], 1),
            "fpr_at_threshold": hits[name][2] / max(hits[name][3], 1),
            # the first frame warms up
            "inference_ms_median": statistics.median(seconds[name][1:]) * 1e3,
        }
    ratios = [a / b for a, b in zip(seconds["fp32"][1:], seconds["int8"][1:])]
    figures["speedup_fp32_over_int8"] = statistics.median(ratios)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--model", type=Path, default=DEMO, help="fp32 model (+ sidecar)")
    parser.add_argument("--out", type=Path, help="default: <model>_int8.onnx")
    parser.add_argument("--calibration-seed", type=int, default=CALIBRATION_SEED)
    parser.add_argument("--calibration-frames", type=int, default=32)
    parser.add_argument("--threshold-seed", type=int, default=THRESHOLD_SEED)
    parser.add_argument("--threshold-frames", type=int, default=40)
    parser.add_argument("--eval-frames", type=int, default=30, help="demo drive frames")
    parser.add_argument("--conv-only", action="store_true", help="quantize convolutions only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from anomaly_seg_ros.model.sidecar import load_model_info, save_model_info

    model: Path = args.model
    out: Path = args.out or model.with_name(f"{model.stem}_int8.onnx")
    info = load_model_info(model)
    if info.graph_refinement is not None:
        raise SystemExit(f"{model}: quantize the model without an in-graph refinement")
    height, width = info.input_size
    started = time.perf_counter()
    images = calibration_images(args.calibration_seed, args.calibration_frames, height, width)
    LOGGER.info(
        "rendered %d calibration frames (world seed %d)", len(images), args.calibration_seed
    )
    with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
        staging = Path(scratch) / out.name
        quantize(model, staging, images, args.conv_only)
        quantized_info = dataclasses.replace(
            info,
            provenance={
                **info.provenance,
                "quantization": {
                    "method": "onnxruntime static QDQ, int8 weights per channel, int8 "
                    f"activations, MinMax, {'convolutions' if args.conv_only else 'body'} "
                    "only (the anomaly head stays float32)",
                    "calibration": f"{len(images)} test-anomaly frames of world seed "
                    f"{args.calibration_seed}",
                    "source": model.name,
                    "command": "python -m demo.model.quantize",
                },
            },
        )
        save_model_info(quantized_info, staging)
        stats = model.with_suffix(".sml.json")
        if stats.is_file():  # the fp32 model's statistics (the int8 body shifts them little)
            shutil.copy(stats, staging.with_suffix(".sml.json"))
        threshold_set = Path(scratch) / "threshold_frames"
        write_threshold_set(
            threshold_set, args.threshold_seed, args.threshold_frames, height, width
        )
        base_params = model.with_suffix(".params.yaml")
        calibrate_threshold(
            staging, threshold_set, base_params, staging.with_suffix(".params.yaml")
        )
        # The fp32 model on the same frames, for a like-for-like comparison (not shipped).
        fp32_params = Path(scratch) / "fp32.params.yaml"
        calibrate_threshold(model, threshold_set, base_params, fp32_params)
        for suffix in (".onnx", ".json", ".sml.json", ".params.yaml"):
            if staging.with_suffix(suffix).is_file():
                os.replace(staging.with_suffix(suffix), out.with_suffix(suffix))
        LOGGER.info(
            "wrote %s (+ sidecar, SML stats, params) in %.0f s", out, time.perf_counter() - started
        )
        figures = compare(
            {"fp32": (model, fp32_params), "int8": (out, out.with_suffix(".params.yaml"))},
            args.eval_frames,
        )
    figures["threshold_calibration"] = (
        f"{args.threshold_frames} test-anomaly frames of world seed {args.threshold_seed}, "
        "threshold at the best pixel F1"
    )
    figures["files_mb"] = round(
        sum(out.with_suffix(s).stat().st_size for s in (".onnx", ".json", ".params.yaml")) / 1e6,
        2,
    )
    report = out.with_suffix(".figures.json")
    report.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
