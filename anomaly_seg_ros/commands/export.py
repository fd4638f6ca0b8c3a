"""``anomaly-seg export``: a checkpoint (or random weights) → ONNX with the anomaly head.

With ``--refine-in-graph PARAMS.yaml`` the graph also computes that file's score and
refinement as the extra output ``refined_score`` (for TensorRT to run on the GPU); with
``--onnx MODEL.onnx`` instead of a checkpoint, the refinement is appended to a model
exported before.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.model_info import IMAGENET_MEAN, IMAGENET_STD

if TYPE_CHECKING:
    import numpy as np

    from anomaly_seg_ros.config import DetectorConfig

LOGGER = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from anomaly_seg_ros.networks import BACKBONES, DECODERS

    parser = subparsers.add_parser(
        "export",
        help="export a network with the anomaly head to ONNX + JSON sidecar",
        description=(
            "Export a checkpoint (ours, VainF DeepLabV3Plus-Pytorch or NVIDIA DeepWV3Plus) "
            "or a randomly initialised network to ONNX with the anomaly head, then check "
            "ONNX Runtime against PyTorch."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="checkpoint file (.pt/.pth)")
    source.add_argument(
        "--random-init", action="store_true", help="random weights (for tests and plumbing)"
    )
    source.add_argument(
        "--onnx",
        type=Path,
        help="an exported model (+ sidecar) to append the --refine-in-graph refinement to",
    )
    parser.add_argument(
        "--kind",
        choices=("auto", "anomaly_seg_ros", "vainf", "nvidia", "pebal"),
        default="auto",
        help="checkpoint layout (auto: detected from the keys)",
    )
    parser.add_argument(
        "--keep-extra-channel",
        action="store_true",
        help="PEBAL: keep the 20th (abstention) channel as a class",
    )
    parser.add_argument(
        "--backbone", choices=BACKBONES, default="mobilenetv2", help="with --random-init"
    )
    parser.add_argument("--width-mult", type=float, default=1.0, help="MobileNetV2 width")
    parser.add_argument(
        "--decoder", choices=DECODERS, default="dense",
        help="DeepLabv3+ decoder layout, with --random-init (separable: the paper's)",
    )  # fmt: skip
    parser.add_argument("--output-stride", type=int, choices=(8, 16), default=16)
    parser.add_argument(
        "--input-size", type=int, nargs=2, metavar=("H", "W"), help="required unless --onnx"
    )
    parser.add_argument("--precision", choices=("fp32", "fp16"), default="fp32")
    parser.add_argument("--opset", type=int, default=18)
    parser.add_argument(
        "--no-parity-check",
        action="store_true",
        help="write the model even where ONNX Runtime cannot run it for the PyTorch parity "
        "check (e.g. fp16 kernels missing); recorded in the sidecar's provenance",
    )
    parser.add_argument("--seed", type=int, default=0, help="with --random-init")
    parser.add_argument("--out", type=Path, required=True, help="output .onnx path")
    parser.add_argument(
        "--refine-in-graph",
        type=Path,
        metavar="PARAMS_YAML",
        help=(
            "compute this parameters file's score_type and refinement (boundary "
            "suppression, dilated smoothing, VDE) in the graph as the output refined_score"
        ),
    )
    parser.add_argument(
        "--sml-stats", type=Path, help="SML statistics JSON (for --refine-in-graph with sml)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from anomaly_seg_ros.networks import create_network
    from anomaly_seg_ros.networks.export import export_onnx

    if args.out.suffix != ".onnx":
        args.out = args.out.with_suffix(".onnx")
    refine_config = _refinement_config(args)
    if args.onnx is not None:
        from anomaly_seg_ros.model_info import load_model_info
        from anomaly_seg_ros.networks.refine_graph import append_refinement

        if refine_config is None:
            raise ConfigError("--onnx appends a refinement: give --refine-in-graph PARAMS_YAML")
        stats = _sml_stats(args, load_model_info(args.onnx).class_names)
        append_refinement(args.onnx, args.out, refine_config, stats)
        print(f"wrote {args.out} and {args.out.with_suffix('.json').name} (refined_score added)")
        return 0
    if args.input_size is None:
        raise ConfigError("--input-size H W is required when exporting a network")
    if args.random_init:
        from anomaly_seg_ros.classes import CITYSCAPES_CLASSES

        torch.manual_seed(args.seed)
        kwargs: dict[str, object] = {}
        if args.backbone == "mobilenetv2":
            kwargs["width_mult"] = args.width_mult
        if args.decoder != "dense":
            kwargs["decoder"] = args.decoder
        try:
            network = create_network(
                args.backbone, len(CITYSCAPES_CLASSES), args.output_stride, **kwargs
            )
        except ValueError as error:  # e.g. a decoder option for wideresnet38
            raise ConfigError(f"cannot build the network: {error}") from error
        class_names = list(CITYSCAPES_CLASSES)
        mean = std = None
        provenance = {"source": "random initialisation", "seed": args.seed}
    else:
        from anomaly_seg_ros.networks.importers import import_checkpoint

        network, meta = import_checkpoint(
            args.checkpoint, args.kind, keep_extra_channel=args.keep_extra_channel
        )
        class_names, mean, std = list(meta.class_names), meta.mean, meta.std
        provenance = {"source": str(args.checkpoint), **_json_safe(meta.meta)}
    info = export_onnx(
        network,
        args.out,
        tuple(args.input_size),
        class_names,
        args.precision,
        provenance=provenance,
        opset=args.opset,
        parity=not args.no_parity_check,
        refine_in_graph=refine_config,
        sml_stats=_sml_stats(args, class_names),
        mean=IMAGENET_MEAN if mean is None else mean,
        std=IMAGENET_STD if std is None else std,
    )
    print(
        f"wrote {args.out} and {args.out.with_suffix('.json').name} "
        f"({info.precision}, input {info.input_height}x{info.input_width}, "
        f"{info.num_classes} classes)"
    )
    return 0


def _refinement_config(args: argparse.Namespace) -> DetectorConfig | None:
    """The settings of --refine-in-graph, or None."""
    from anomaly_seg_ros.config import config_from_params_file

    if args.refine_in_graph is None:
        if args.sml_stats is not None:
            raise ConfigError("--sml-stats is used with --refine-in-graph only")
        return None
    return config_from_params_file(str(args.refine_in_graph))


def _sml_stats(
    args: argparse.Namespace, class_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray] | None:
    """The statistics of --sml-stats, checked against the model's classes, or None."""
    if args.sml_stats is None:
        return None
    from anomaly_seg_ros.sml_stats import load_sml_stats

    return load_sml_stats(args.sml_stats, class_names)


def _json_safe(values: dict[str, Any]) -> dict[str, Any]:
    """Keep the provenance entries a JSON sidecar can hold (numbers, strings, flags)."""
    return {
        str(key): value
        for key, value in values.items()
        if isinstance(value, (str, int, float, bool)) or value is None
    }
