"""Load public Cityscapes checkpoints as downloaded (and our own format) into our networks.

Supported, detected from the keys with ``kind="auto"``:

* ``vainf``: VainF DeepLabV3Plus-Pytorch ``best_deeplabv3plus_*_cityscapes_os16.pth``:
  ``{"model_state": ...}``; ResNet-50 vs -101 from the number of ``layer3`` blocks
  (6 / 23), MobileNetV2 from ``backbone.low_level_features``. Built at output stride 16.
* ``nvidia``: NVIDIA semantic-segmentation (sdcnet) DeepWV3Plus WideResNet38,
  ``{"state_dict": ...}`` with the DataParallel ``module.`` prefix. Its loss' class
  weights (``criterion.*``) are dropped. Output stride 8, ``align_corners=True``.
* ``pebal``: PEBAL's fine-tuned DeepWV3Plus, ``{"model": ...}`` with a ``branch1.``
  prefix and a 20th output channel (the gambler loss' abstention logit). By default the
  20th channel is dropped (19 Cityscapes logits, scores computed as for any network);
  ``keep_extra_channel=True`` keeps it as a class named ``"abstention"``.
* ``anomaly_seg_ros``: a file written by :func:`~.checkpoint.save_checkpoint`.

All files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import nn

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.model.classes import CITYSCAPES_CLASSES
from anomaly_seg_ros.networks import create_network
from anomaly_seg_ros.networks.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointMeta,
    checkpoint_from_payload,
    load_state_dict_checked,
    read_torch_file,
)
from anomaly_seg_ros.networks.deeplabv3plus import DeepLabV3Plus
from anomaly_seg_ros.networks.deepwv3plus import DeepWV3Plus

LOGGER = logging.getLogger(__name__)

#: Accepted values of ``kind``.
KINDS = ("auto", "anomaly_seg_ros", "vainf", "nvidia", "pebal")
#: Where each training code keeps the weights in its checkpoint dict.
_CONTAINER_KEYS = ("model_state", "state_dict", "model")
#: Prefixes added by wrappers (DataParallel, PEBAL's Network), stripped in this order.
_WRAPPER_PREFIXES = ("module.", "branch1.")
#: Entries that are not network weights (NVIDIA registers its loss as a submodule).
_NON_NETWORK_PREFIXES = ("criterion.",)
_RESNET_DEPTH_BY_LAYER3_BLOCKS = {6: "resnet50", 23: "resnet101"}
_MOBILENET_LAST_CONV = "backbone.high_level_features.17.conv.2.weight"
_FINAL_CONV = {
    "vainf": f"{DeepLabV3Plus.final_conv_path}.weight",
    "wrn38": f"{DeepWV3Plus.final_conv_path}.weight",
}
_CITYSCAPES_CLASSES = len(CITYSCAPES_CLASSES)


def _extract_state_dict(payload: Any, source: str) -> tuple[dict[str, torch.Tensor], str]:
    """Find the weights inside a loaded checkpoint: ``(state_dict, container key)``."""
    if isinstance(payload, Mapping):
        for key in _CONTAINER_KEYS:
            if isinstance(payload.get(key), Mapping):
                return dict(payload[key]), key
        if payload and all(isinstance(value, torch.Tensor) for value in payload.values()):
            return dict(payload), ""
        found = ", ".join(map(str, list(payload)[:10]))
        raise ModelError(
            f"{source}: no weights found: expected a state_dict or a dict with one of "
            f"{list(_CONTAINER_KEYS)}, found keys [{found}]"
        )
    raise ModelError(f"{source}: holds a {type(payload).__name__}, not a checkpoint dict")


def _strip_wrappers(
    state_dict: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Remove wrapper prefixes and non-network entries; return what was removed."""
    removed_prefixes = []
    for prefix in _WRAPPER_PREFIXES:
        if state_dict and all(key.startswith(prefix) for key in state_dict):
            state_dict = {key[len(prefix) :]: value for key, value in state_dict.items()}
            removed_prefixes.append(prefix)
    kept = {k: v for k, v in state_dict.items() if not k.startswith(_NON_NETWORK_PREFIXES)}
    dropped = sorted(set(state_dict) - set(kept))
    if dropped:
        LOGGER.info("ignoring %d non-network entries: %s", len(dropped), dropped[:5])
    return kept, removed_prefixes


def _detect_architecture(
    state_dict: Mapping[str, torch.Tensor], source: str
) -> tuple[str, dict[str, Any]]:
    """Return ``(layout, create_network kwargs without output_stride)`` from the keys."""
    if "backbone.low_level_features.0.0.weight" in state_dict:
        architecture: dict[str, Any] = {"backbone": "mobilenetv2"}
        if _MOBILENET_LAST_CONV in state_dict:
            width = state_dict[_MOBILENET_LAST_CONV].shape[0] / 320
            if width != 1.0:
                architecture["width_mult"] = width
        layout = "vainf"
    elif "backbone.layer3.0.conv1.weight" in state_dict:
        blocks = {key.split(".")[2] for key in state_dict if key.startswith("backbone.layer3.")}
        if len(blocks) not in _RESNET_DEPTH_BY_LAYER3_BLOCKS:
            raise ModelError(
                f"{source}: a ResNet with {len(blocks)} layer3 blocks; supported: "
                f"{_RESNET_DEPTH_BY_LAYER3_BLOCKS}"
            )
        architecture, layout = {"backbone": _RESNET_DEPTH_BY_LAYER3_BLOCKS[len(blocks)]}, "vainf"
    elif "mod1.conv1.weight" in state_dict:
        architecture, layout = {"backbone": "wideresnet38"}, "wrn38"
    else:
        shown = ", ".join(list(state_dict)[:8])
        raise ModelError(
            f"{source}: unknown network layout (first keys: {shown}); supported: VainF "
            "DeepLabV3Plus (ResNet-50/101, MobileNetV2) and NVIDIA/PEBAL DeepWV3Plus"
        )
    final = _FINAL_CONV[layout]
    if final not in state_dict:
        raise ModelError(f"{source}: the final classifier {final} is missing")
    architecture["num_classes"] = int(state_dict[final].shape[0])
    return layout, architecture


def _check_kind(kind: str, layout: str, prefixes: list[str], source: str) -> str:
    """Resolve ``auto`` and reject a kind that contradicts the file's layout."""
    detected = "vainf" if layout == "vainf" else ("pebal" if "branch1." in prefixes else "nvidia")
    if kind == "auto":
        return detected
    compatible = {"vainf": {"vainf"}, "nvidia": {"nvidia", "pebal"}, "pebal": {"nvidia", "pebal"}}
    if detected not in compatible.get(kind, set()):
        raise ModelError(f"{source}: kind={kind!r} given, but the file looks like {detected!r}")
    return kind


def import_checkpoint(
    path: str | os.PathLike[str],
    kind: str = "auto",
    *,
    output_stride: int | None = None,
    keep_extra_channel: bool = False,
) -> tuple[nn.Module, CheckpointMeta]:
    """Load a checkpoint as downloaded into the matching network of this package.

    :param path: the ``.pth`` file.
    :param kind: one of :data:`KINDS`; ``auto`` detects it from the contents.
    :param output_stride: build at this stride instead of the training one (VainF 16,
        WideResNet38 8); the ASPP rates follow it.
    :param keep_extra_channel: keep PEBAL's 20th (abstention) logit as a class.
    :return: ``(network in eval mode on the CPU, meta)``; ``meta.meta`` records the
        source file and importer.
    :raises ModelError: unreadable file, unknown layout, or weights that don't fit
        (the message lists missing / unexpected keys).
    :raises ValueError: for an unknown ``kind``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind {kind!r}; valid: {', '.join(KINDS)}")
    source = str(path)
    payload = read_torch_file(path)
    is_ours = isinstance(payload, Mapping) and payload.get("format") == CHECKPOINT_FORMAT
    if is_ours or kind == "anomaly_seg_ros":
        return checkpoint_from_payload(payload, source)
    state_dict, container = _extract_state_dict(payload, source)
    state_dict, prefixes = _strip_wrappers(state_dict)
    layout, architecture = _detect_architecture(state_dict, source)
    kind = _check_kind(kind, layout, prefixes, source)
    default_stride = 16 if layout == "vainf" else 8
    architecture["output_stride"] = output_stride or default_stride

    class_names = list(CITYSCAPES_CLASSES)
    extra = architecture["num_classes"] - _CITYSCAPES_CLASSES
    if layout == "wrn38" and extra == 1:
        if keep_extra_channel:
            class_names.append("abstention")
        else:
            final = _FINAL_CONV["wrn38"]
            state_dict[final] = state_dict[final][:_CITYSCAPES_CLASSES].clone()
            architecture["num_classes"] = _CITYSCAPES_CLASSES
    elif extra != 0:
        LOGGER.warning(
            "%s: %d classes, not Cityscapes' 19; naming them by index",
            source,
            architecture["num_classes"],
        )
        class_names = [f"class_{index}" for index in range(architecture["num_classes"])]

    network = create_network(**architecture)
    load_state_dict_checked(network, state_dict, source)
    provenance: dict[str, Any] = {
        "source": os.path.basename(source),
        "imported_from": kind,
        "container_key": container,
        "stripped_prefixes": prefixes,
        "trained_output_stride": default_stride,
    }
    if layout == "wrn38" and extra == 1:
        provenance["extra_channel"] = "kept" if keep_extra_channel else "dropped"
    for key in ("epoch", "cur_itrs", "best_score", "mean_iu", "iteration"):
        if isinstance(payload, Mapping) and key in payload:
            try:
                provenance[key] = float(payload[key])
            except (TypeError, ValueError):
                LOGGER.debug("not recording non-numeric %s", key)
    LOGGER.info("imported %s as %s (%s)", source, kind, architecture)
    return network.eval(), CheckpointMeta(
        class_names=tuple(class_names),
        architecture=dict(cast(dict[str, Any], network.architecture)),
        align_corners=bool(network.align_corners),
        meta=provenance,
    )
