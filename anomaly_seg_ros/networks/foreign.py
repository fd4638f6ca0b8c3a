"""Bring a model from elsewhere: an ONNX graph or a torch module that emits class logits,
wrapped with the package's anomaly head.

* :func:`wrap_onnx`: ONNX graph composition (``onnx.compose``): the foreign graph, its
  input renamed to :data:`~anomaly_seg_ros.model.summary.INPUT_NAME`, feeds an exported
  :class:`LogitsHead` (extra channels dropped, bilinear upsampling to the input size, the
  logit summary). Parity: the composed graph against the foreign graph's own logits
  summarised in torch, both under ONNX Runtime.
* :func:`load_module`: ``pkg.mod:factory`` + a weights file → a torch module, wrapped in
  :class:`SelectChannels` for :func:`~anomaly_seg_ros.networks.export.export_onnx`.
"""

from __future__ import annotations

import datetime
import importlib
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from anomaly_seg_ros import __version__
from anomaly_seg_ros.errors import ConfigError, ModelError
from anomaly_seg_ros.model.classes import default_class_colors
from anomaly_seg_ros.model.sidecar import NORMALIZATION_PRESETS, ModelInfo, save_model_info
from anomaly_seg_ros.model.summary import INPUT_NAME, OUTPUT_NAMES
from anomaly_seg_ros.networks.head import summarize
from anomaly_seg_ros.networks.refine_graph import _opset

LOGGER = logging.getLogger(__name__)

#: The opset the head is exported at when the foreign graph's is older.
HEAD_OPSET = 18


def normalization(
    preset: str | None, mean: Sequence[float] | None, std: Sequence[float] | None
) -> tuple[tuple[float, float, float], tuple[float, float, float], str]:
    """The input normalisation of a foreign model: a named preset or explicit mean/std.

    There is no default on purpose: a model trained on [0, 1] or 0 … 255 input and run
    with ImageNet statistics gives wrong scores without any error.

    :return: (mean, std, description for the provenance).
    :raises ConfigError: neither or both given, an unknown preset, or a bad mean/std.
    """
    if preset is not None and (mean is not None or std is not None):
        raise ConfigError("give --normalization or --mean/--std, not both")
    if preset is not None:
        if preset not in NORMALIZATION_PRESETS:
            raise ConfigError(
                f"normalization {preset!r} unknown; valid: {', '.join(NORMALIZATION_PRESETS)}"
            )
        preset_mean, preset_std = NORMALIZATION_PRESETS[preset]
        return preset_mean, preset_std, preset
    if mean is None or std is None:
        raise ConfigError(
            "the input normalisation of this model is not known: give --normalization "
            f"{'|'.join(NORMALIZATION_PRESETS)} (imagenet: ImageNet mean/std; unit: RGB in "
            "[0, 1]; raw: RGB in 0..255) or --mean R G B --std R G B (on RGB in [0, 1]); "
            "see docs/bring_your_own_model.md"
        )
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ConfigError(f"--mean/--std need 3 values each, std > 0 (got {mean}, {std})")
    as_triple = (float(mean[0]), float(mean[1]), float(mean[2]))
    std_triple = (float(std[0]), float(std[1]), float(std[2]))
    return as_triple, std_triple, "explicit"


def kept_channels(channels: int, drop: Sequence[int], classes: int) -> list[int]:
    """The logit channels that are classes, after ``drop``.

    :raises ModelError: a channel out of range, or the count left differs from ``classes``.
    """
    bad = [index for index in drop if not 0 <= index < channels]
    if bad:
        raise ModelError(
            f"--drop-channels {bad}: the network emits {channels} channels (0..{channels - 1})"
        )
    keep = [index for index in range(channels) if index not in set(drop)]
    if len(keep) != classes:
        hint = (
            f"drop the extra ones with --drop-channels (e.g. --drop-channels {channels - 1})"
            if len(keep) > classes
            else "give the model's own class list (--classes)"
        )
        raise ModelError(
            f"the network emits {channels} logit channels"
            f"{f', {len(keep)} after --drop-channels' if drop else ''} but there are "
            f"{classes} class names; {hint}"
        )
    return keep


def _logits(output: Any) -> torch.Tensor:
    """A module's output → its logits: the tensor, ``out`` of a dict, the first of a tuple."""
    if isinstance(output, dict):
        output = output["out"] if "out" in output else next(iter(output.values()))
    if isinstance(output, (tuple, list)):
        output = output[0]
    if not isinstance(output, torch.Tensor) or output.dim() != 4:
        raise ModelError("the module must return (B, C, h, w) class logits")
    return output


class SelectChannels(nn.Module):
    """A torch module's logits, extra channels dropped, for :class:`AnomalyHead`.

    :param network: returns (B, C, h, w) logits (or a dict with ``out``, or a tuple).
    :param keep: channel indices that are classes, in class order; None = all.
    :param align_corners: the network's bilinear convention, for the head's upsampling.
    """

    keep: torch.Tensor

    def __init__(self, network: nn.Module, keep: Sequence[int] | None, align_corners: bool):
        super().__init__()
        self.network = network
        self.align_corners = align_corners
        self.select = keep is not None
        self.register_buffer("keep", torch.tensor(list(keep or []), dtype=torch.long))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = _logits(self.network(image))
        return logits.index_select(1, self.keep) if self.select else logits


class LogitsHead(nn.Module):
    """(1, C, h, w) logits → the logit summary at the input size (the composed head).

    :param keep: channel indices that are classes; None = all.
    :param input_size: (H, W) to upsample to.
    """

    keep: torch.Tensor

    def __init__(
        self, keep: Sequence[int] | None, input_size: tuple[int, int], align_corners: bool
    ):
        super().__init__()
        self.select = keep is not None
        self.register_buffer("keep", torch.tensor(list(keep or []), dtype=torch.long))
        self.input_size = input_size
        self.align_corners = align_corners

    def forward(self, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = logits.float()
        if self.select:
            logits = logits.index_select(1, self.keep)
        logits = F.interpolate(
            logits, size=self.input_size, mode="bilinear", align_corners=self.align_corners
        )
        return summarize(logits)


def load_module(spec: str, weights: Path | None) -> nn.Module:
    """``pkg.mod:factory`` → ``factory()``, with ``weights`` loaded (strict).

    The current directory is searched first, so a module beside the user's files imports.
    A weights file may hold the state dict itself or under ``state_dict``, ``model_state``,
    ``model`` or ``net``; a ``module.`` prefix on every key (DataParallel) is removed.

    :raises ModelError: the module, factory or weights cannot be loaded or do not fit.
    """
    module_name, _, factory_name = spec.partition(":")
    if not module_name or not factory_name:
        raise ConfigError(f"--module {spec!r}: expected PKG.MODULE:FACTORY")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as error:
        raise ModelError(f"--module {spec}: {error}") from error
    network = factory()
    if not isinstance(network, nn.Module):
        raise ModelError(f"--module {spec}: the factory returned {type(network).__name__}")
    if weights is None:
        return network.eval()
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as error:
        raise ModelError(f"{weights}: cannot read the weights ({error})") from error
    for key in ("state_dict", "model_state", "model", "net"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise ModelError(f"{weights}: not a state dict ({type(state).__name__})")
    if state and all(str(name).startswith("module.") for name in state):
        state = {str(name)[len("module.") :]: value for name, value in state.items()}
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[:3]
        raise ModelError(f"{weights} does not fit {spec}: {' '.join(first)}") from error
    return network.eval()


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename the value ``old`` to ``new`` everywhere in ``graph`` and its subgraphs."""
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.name == old:
            value.name = new
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
        for attribute in node.attribute:
            for subgraph in (attribute.g, *attribute.graphs):
                _rename(subgraph, old, new)


def _fix_input(
    body: onnx.ModelProto, source: Path, input_size: tuple[int, int] | None
) -> tuple[str, tuple[int, int]]:
    """Check the body's one image input and make its shape static (1, 3, H, W).

    :return: (input name, (H, W)).
    :raises ModelError: not one float NCHW input, or an input size that does not fit.
    """
    initializers = {tensor.name for tensor in body.graph.initializer}
    inputs = [value for value in body.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise ModelError(
            f"{source}: {len(inputs)} graph inputs {[v.name for v in inputs]}; a "
            "segmentation network takes one (1, 3, H, W) image"
        )
    tensor_type = inputs[0].type.tensor_type
    if tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ModelError(
            f"{source}: input {inputs[0].name!r} is "
            f"{onnx.TensorProto.DataType.Name(tensor_type.elem_type)}; the package feeds float32"
        )
    dims = tensor_type.shape.dim
    if len(dims) != 4:
        raise ModelError(f"{source}: input {inputs[0].name!r} has {len(dims)} axes, not NCHW")
    known = [int(d.dim_value) if d.HasField("dim_value") else None for d in dims]
    if known[1] not in (None, 3):
        raise ModelError(f"{source}: input has {known[1]} channels, not 3 (RGB)")
    static = (known[2], known[3])
    if input_size is None:
        if None in static:
            raise ModelError(
                f"{source}: the input size is dynamic ({dims[2].dim_param or '?'} x "
                f"{dims[3].dim_param or '?'}); give the size to export at: --input-size H W"
            )
        input_size = (int(static[0]), int(static[1]))  # type: ignore[arg-type]
    elif None not in static and static != tuple(input_size):
        raise ModelError(
            f"{source}: the graph's input is fixed at {static[0]}x{static[1]}, not "
            f"--input-size {input_size[0]} {input_size[1]}"
        )
    for dim, value in zip(dims, (1, 3, *input_size)):
        dim.Clear()
        dim.dim_value = value
    return inputs[0].name, (int(input_size[0]), int(input_size[1]))


def _logits_output(body: onnx.ModelProto, source: Path, name: str | None) -> str:
    outputs = [str(value.name) for value in body.graph.output]
    if name is not None:
        if name not in outputs:
            raise ModelError(f"{source}: no output {name!r}; its outputs are {outputs}")
        return name
    if len(outputs) != 1:
        raise ModelError(
            f"{source}: {len(outputs)} outputs {outputs}; name the class logits with "
            "--logits-output NAME"
        )
    return str(outputs[0])


def _session(model: onnx.ModelProto | str) -> Any:
    import onnxruntime as ort

    data = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def wrap_onnx(
    source: str | Path,
    path: str | Path,
    class_names: Sequence[str],
    mean: Sequence[float],
    std: Sequence[float],
    drop_channels: Sequence[int] = (),
    logits_output: str | None = None,
    input_size: tuple[int, int] | None = None,
    align_corners: bool = False,
    provenance: dict[str, Any] | None = None,
    parity: bool = True,
    parity_tolerance: Any = None,
) -> ModelInfo:
    """Write ``path``: the ONNX graph ``source`` (class logits, NCHW, any spatial size)
    composed with the anomaly head, and its sidecar.

    :param class_names: one per kept channel.
    :param mean: input normalisation (RGB in [0, 1]), recorded in the sidecar.
    :param drop_channels: logit channels that are not classes (e.g. a void channel).
    :param logits_output: the output holding the logits; default the graph's only output.
    :param input_size: (H, W) for a graph with a dynamic input size.
    :param align_corners: bilinear convention of the head's upsampling.
    :param parity: compare the composed graph with the foreign graph's logits summarised
        in torch (both under ONNX Runtime) and refuse to write on disagreement.
    :param parity_tolerance: a :class:`~anomaly_seg_ros.networks.export.ParityTolerance`.
    :raises ModelError: a graph that does not fit, or parity fails.
    """
    from onnx import compose

    from anomaly_seg_ros.networks.export import (
        ParityTolerance,
        _set_metadata,
        compare_summaries,
        require_parity,
    )
    from anomaly_seg_ros.networks.onnx_export import torch_export

    source, path = Path(source), Path(path)
    if source.resolve() == path.resolve():
        raise ConfigError(f"--out {path} would overwrite the model it wraps; choose another")
    try:
        body = onnx.load(os.fspath(source))
    except Exception as error:  # protobuf's DecodeError and friends
        raise ModelError(f"{source}: not an ONNX model ({error})") from error
    input_name, size = _fix_input(body, source, input_size)
    logits_name = _logits_output(body, source, logits_output)
    logits_value = next(value for value in body.graph.output if value.name == logits_name)
    kept_output = onnx.ValueInfoProto()
    kept_output.CopyFrom(logits_value)
    del body.graph.output[:]  # only the logits leave the body
    body.graph.output.append(kept_output)
    probe = np.zeros((1, 3, *size), np.float32)
    try:
        logits = _session(body).run([logits_name], {input_name: probe})[0]
    except Exception as error:  # ONNX Runtime's own exception types
        first = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
        raise ModelError(f"ONNX Runtime cannot run {source}: {first}") from error
    if logits.ndim != 4 or logits.shape[0] != 1:
        raise ModelError(
            f"{source}: output {logits_name!r} has shape {logits.shape}; expected (1, C, h, w) "
            "class logits (NCHW)"
        )
    keep = kept_channels(int(logits.shape[1]), drop_channels, len(class_names))
    opset = max(HEAD_OPSET, _opset(body))
    if _opset(body) < opset:
        try:
            body = onnx.version_converter.convert_version(body, opset)
        except Exception as error:  # the converter raises plain RuntimeErrors
            raise ModelError(
                f"{source}: cannot convert opset {_opset(body)} to {opset}: {error}"
            ) from error
    head = LogitsHead(keep if drop_channels else None, size, align_corners).eval()
    info = ModelInfo(
        class_names=tuple(class_names),
        input_height=size[0],
        input_width=size[1],
        mean=(float(mean[0]), float(mean[1]), float(mean[2])),
        std=(float(std[0]), float(std[1]), float(std[2])),
        align_corners=align_corners,
        architecture={"name": "onnx", "source": source.name},
        class_colors=tuple(default_class_colors(len(class_names))),
        provenance={
            "exported_by": f"anomaly_seg_ros {__version__}",
            "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "source": str(source),
            "logits_output": logits_name,
            "drop_channels": list(drop_channels),
            "opset": opset,
            **({} if parity else {"parity_checked": False}),
            **(provenance or {}),
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        head_path = Path(scratch) / "head.onnx"
        torch_export(head, (torch.from_numpy(logits),), head_path, opset, ["logits"], OUTPUT_NAMES)
        head_model = onnx.load(os.fspath(head_path))
        body = compose.add_prefix(body, "body/")
        head_model = compose.add_prefix(head_model, "head/")
        body.ir_version = head_model.ir_version = max(body.ir_version, head_model.ir_version)
        model = compose.merge_models(
            body,
            head_model,
            io_map=[(f"body/{logits_name}", "head/logits")],
            outputs=[f"head/{name}" for name in OUTPUT_NAMES],
        )
        _rename(model.graph, f"body/{input_name}", INPUT_NAME)
        for name in OUTPUT_NAMES:
            _rename(model.graph, f"head/{name}", name)
        _set_metadata(model, info)
        staging = Path(scratch) / path.name
        onnx.save(model, os.fspath(staging))
        onnx.checker.check_model(os.fspath(staging), full_check=True)
        if parity:
            reference_body = _session(onnx.load(os.fspath(source)))
            composed = _session(os.fspath(staging))

            def compare(image: np.ndarray) -> Any:
                raw = reference_body.run([logits_name], {input_name: image})[0]
                with torch.inference_mode():
                    reference = [t.numpy() for t in head(torch.from_numpy(raw))]
                candidate = composed.run(list(OUTPUT_NAMES), {INPUT_NAME: image})
                return compare_summaries(
                    dict(zip(OUTPUT_NAMES, reference)), dict(zip(OUTPUT_NAMES, candidate))
                )

            require_parity(
                compare, staging, info, parity_tolerance or ParityTolerance(), source.name
            )
        os.replace(staging, path)
        save_model_info(info, path)
    LOGGER.info("wrapped %s as %s (%d classes, input %dx%d)", source, path, len(keep), *size)
    return info
