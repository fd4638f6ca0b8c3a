"""``anomaly-seg export``: a network → ONNX with the anomaly head, + JSON sidecar.

Sources: ``--checkpoint`` (the layouts of :mod:`~anomaly_seg_ros.networks.importers`),
``--random-init``, ``--module PKG.MOD:FACTORY --weights FILE`` (any torch module emitting
class logits) or ``--onnx MODEL.onnx``. ``--onnx`` is told apart by the graph itself: a
graph whose outputs are the package's logit summary was exported by this package, and
``--refine-in-graph`` appends a refinement to it; any other graph must emit class logits
and is wrapped with the head (:func:`~anomaly_seg_ros.networks.foreign.wrap_onnx`).
A foreign model (``--module``, foreign ``--onnx``) needs its input normalisation named:
``--normalization imagenet|unit|raw`` or ``--mean/--std``.

With ``--refine-in-graph PARAMS.yaml`` the graph also computes that file's score and
refinement as the extra output ``refined_score`` (for TensorRT to run on the GPU).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.model.sidecar import IMAGENET_MEAN, IMAGENET_STD, NORMALIZATION_PRESETS

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
        help="an ONNX graph emitting class logits (NCHW, any size) to wrap with the head; "
        "or a model exported by this package, to append --refine-in-graph to",
    )
    source.add_argument(
        "--module",
        metavar="PKG.MOD:FACTORY",
        help="a torch module emitting class logits, built by calling FACTORY() "
        "(the current directory is importable); weights from --weights",
    )
    parser.add_argument("--weights", type=Path, help="state dict for --module (.pth/.pt)")
    foreign = parser.add_argument_group(
        "foreign models (--module, or --onnx of a network emitting logits)"
    )
    foreign.add_argument(
        "--normalization",
        choices=tuple(NORMALIZATION_PRESETS),
        help="input normalisation (required, or --mean/--std): imagenet = ImageNet "
        "mean/std; unit = RGB in [0, 1]; raw = RGB in 0..255",
    )
    foreign.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"),
                         help="per-channel mean on RGB in [0, 1]")  # fmt: skip
    foreign.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"),
                         help="per-channel std on RGB in [0, 1]")  # fmt: skip
    foreign.add_argument(
        "--classes",
        type=Path,
        help="text file, one class name per line (default: the 19 Cityscapes classes)",
    )
    foreign.add_argument(
        "--drop-channels",
        type=int,
        nargs="+",
        default=[],
        metavar="N",
        help="logit channels that are not classes (e.g. 19 for a void channel)",
    )
    foreign.add_argument("--logits-output", help="--onnx: the output holding the logits")
    foreign.add_argument(
        "--align-corners", action="store_true", help="upsample logits with align_corners=True"
    )
    parser.add_argument(
        "--parity-label-agreement",
        type=float,
        metavar="PERCENT",
        help="least share of pixels whose label must agree (default 99.9 fp32, 99 fp16)",
    )
    parser.add_argument(
        "--parity-score-tolerance",
        type=float,
        metavar="SHARE",
        help="where the max logit differs pixelwise (max-unpooling ties), the largest "
        "difference of its quantiles as a share of its spread (default 0.01)",
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
        "--input-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="network input size; required unless --onnx gives a fixed one",
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
    _check_foreign_options(args)
    if args.onnx is not None and _is_package_model(args.onnx):
        from anomaly_seg_ros.model.sidecar import load_model_info
        from anomaly_seg_ros.networks.refine_graph import append_refinement

        if refine_config is None:
            raise ConfigError(
                f"{args.onnx} was exported by anomaly_seg_ros already (its outputs are the "
                "logit summary); --onnx appends a refinement to it: give --refine-in-graph "
                "PARAMS_YAML"
            )
        stats = _sml_stats(args, load_model_info(args.onnx).class_names)
        append_refinement(args.onnx, args.out, refine_config, stats)
        print(f"wrote {args.out} and {args.out.with_suffix('.json').name} (refined_score added)")
        return 0
    if args.onnx is not None or args.module is not None:
        return _export_foreign(args, refine_config)
    if args.input_size is None:
        raise ConfigError("--input-size H W is required when exporting a network")
    if args.random_init:
        from anomaly_seg_ros.model.classes import CITYSCAPES_CLASSES

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


def _is_package_model(path: Path) -> bool:
    """Whether the graph at ``path`` already emits the package's logit summary."""
    import onnx

    from anomaly_seg_ros.errors import ModelError
    from anomaly_seg_ros.model.summary import OUTPUT_NAMES

    try:
        model = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError as error:
        raise ModelError(f"--onnx {path}: no such file") from error
    except Exception as error:  # protobuf's DecodeError and friends
        raise ModelError(f"--onnx {path}: not an ONNX model ({error})") from error
    return set(OUTPUT_NAMES) <= {output.name for output in model.graph.output}


def _check_foreign_options(args: argparse.Namespace) -> None:
    """Options of foreign models only with a foreign model, --weights only with --module."""
    if args.weights is not None and args.module is None:
        raise ConfigError("--weights goes with --module")
    foreign = args.module is not None or (
        args.onnx is not None and not _is_package_model(args.onnx)
    )
    given = [
        option
        for option, value in (
            ("--normalization", args.normalization),
            ("--mean", args.mean),
            ("--std", args.std),
            ("--classes", args.classes),
            ("--drop-channels", args.drop_channels),
            ("--logits-output", args.logits_output),
            ("--align-corners", args.align_corners),
        )
        if value
    ]
    if given and not foreign:
        raise ConfigError(
            f"{', '.join(given)}: for a foreign model only (--module, or --onnx of a network "
            "emitting logits); this source records its own"
        )


def _class_names(args: argparse.Namespace) -> list[str]:
    from anomaly_seg_ros.model.classes import CITYSCAPES_CLASSES

    if args.classes is None:
        return list(CITYSCAPES_CLASSES)
    try:
        lines = args.classes.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ConfigError(f"--classes {args.classes}: {error}") from error
    names = [line.strip() for line in lines if line.strip()]
    if len(names) < 2:
        raise ConfigError(f"--classes {args.classes}: needs one class name per line")
    return names


def _export_foreign(args: argparse.Namespace, refine_config: DetectorConfig | None) -> int:
    """``--module`` or a foreign ``--onnx``: wrap with the head, check parity, sidecar."""
    from anomaly_seg_ros.networks.export import ParityTolerance
    from anomaly_seg_ros.networks.foreign import normalization

    mean, std, preset = normalization(args.normalization, args.mean, args.std)
    class_names = _class_names(args)
    agreement = args.parity_label_agreement
    if agreement is not None and not 0 < agreement <= 100:
        raise ConfigError(f"--parity-label-agreement {agreement} not in (0, 100]")
    tolerance = ParityTolerance(None if agreement is None else agreement / 100.0)
    if args.parity_score_tolerance is not None:
        tolerance = replace(tolerance, score_distribution=args.parity_score_tolerance)
    provenance = {"normalization": preset}
    if args.onnx is not None:
        from anomaly_seg_ros.networks.foreign import wrap_onnx

        if args.precision != "fp32":
            raise ConfigError("--precision fp16 is for torch sources; --onnx keeps the graph's")
        info = wrap_onnx(
            args.onnx,
            args.out,
            class_names,
            mean,
            std,
            args.drop_channels,
            args.logits_output,
            None if args.input_size is None else tuple(args.input_size),
            args.align_corners,
            provenance,
            not args.no_parity_check,
            tolerance,
        )
        if refine_config is not None:
            from anomaly_seg_ros.networks.refine_graph import append_refinement

            info = append_refinement(
                args.out, args.out, refine_config, _sml_stats(args, class_names)
            )
    else:
        import torch

        from anomaly_seg_ros.networks.export import export_onnx
        from anomaly_seg_ros.networks.foreign import (
            SelectChannels,
            _logits,
            kept_channels,
            load_module,
        )

        if args.input_size is None:
            raise ConfigError("--module needs --input-size H W (the network's input size)")
        network = load_module(args.module, args.weights)
        with torch.inference_mode():
            channels = _logits(network(torch.zeros(1, 3, *args.input_size))).shape[1]
        keep = kept_channels(int(channels), args.drop_channels, len(class_names))
        wrapped = SelectChannels(network, keep if args.drop_channels else None, args.align_corners)
        provenance.update(
            source=args.module,
            weights=str(args.weights) if args.weights else "",
            drop_channels=",".join(str(c) for c in args.drop_channels),
        )
        info = export_onnx(
            wrapped,
            args.out,
            tuple(args.input_size),
            class_names,
            args.precision,
            mean=mean,
            std=std,
            provenance=provenance,
            opset=args.opset,
            parity=not args.no_parity_check,
            refine_in_graph=refine_config,
            sml_stats=_sml_stats(args, class_names),
            parity_tolerance=tolerance,
        )
    print(
        f"wrote {args.out} and {args.out.with_suffix('.json').name} ({info.precision}, input "
        f"{info.input_height}x{info.input_width}, {info.num_classes} classes, normalization "
        f"{preset}: mean {list(info.mean)} std {[round(v, 6) for v in info.std]})"
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
    from anomaly_seg_ros.model.sml_stats import load_sml_stats

    return load_sml_stats(args.sml_stats, class_names)


def _json_safe(values: dict[str, Any]) -> dict[str, Any]:
    """Keep the provenance entries a JSON sidecar can hold (numbers, strings, flags)."""
    return {
        str(key): value
        for key, value in values.items()
        if isinstance(value, (str, int, float, bool)) or value is None
    }
