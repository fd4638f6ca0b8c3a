"""Our checkpoint format: weights plus everything needed to rebuild and use the network.

A file is a ``torch.save`` of a plain dict, readable with ``weights_only=True``::

    {"format": "anomaly_seg_ros/checkpoint", "version": 1,
     "architecture": {...},        # create_network(**architecture) rebuilds the network
     "state_dict": {name: tensor},
     "class_names": [...], "mean": [r, g, b], "std": [r, g, b],   # RGB in [0, 1]
     "align_corners": bool, "meta": {...}}                        # meta: JSON-able
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.model.sidecar import IMAGENET_MEAN, IMAGENET_STD
from anomaly_seg_ros.networks import create_network

LOGGER = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "anomaly_seg_ros/checkpoint"
CHECKPOINT_VERSION = 1
_KEYS_SHOWN = 5

# NumPy 2 moved numpy.core to numpy._core; the scalar() reconstructor is the same.
_numpy_scalar = getattr(np, "_core", None) or np.core
_numpy_scalar = _numpy_scalar.multiarray.scalar

# Training scripts often store metrics as NumPy scalars (VainF's "best_score", NVIDIA's
# "mean_iu"). weights_only refuses them unless allowlisted; scalar() and dtype() only
# rebuild numbers. Files written under NumPy 1 name the module "numpy.core", under
# NumPy 2 "numpy._core".
_NUMPY_SCALAR_GLOBALS: list[Any] = [
    (_numpy_scalar, "numpy._core.multiarray.scalar"),
    (_numpy_scalar, "numpy.core.multiarray.scalar"),
    np.dtype,
    *[type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDG"],
]


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint says besides its weights.

    :param class_names: class names, index = train ID.
    :param architecture: ``create_network`` keyword arguments.
    :param mean: RGB mean for inputs scaled to [0, 1].
    :param std: RGB standard deviation, same scale.
    :param align_corners: bilinear convention of the network.
    :param meta: free-form JSON-able provenance (source file, importer, epoch...).
    """

    class_names: tuple[str, ...]
    architecture: dict[str, Any]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    align_corners: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


def read_torch_file(path: str | os.PathLike[str]) -> Any:
    """``torch.load`` a file safely (``weights_only=True``) onto the CPU.

    :param path: the file.
    :return: the unpickled object.
    :raises ModelError: if the file is missing, not a torch file, or needs code to load.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist (check the path)")
    try:
        with torch.serialization.safe_globals(_NUMPY_SCALAR_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message is long; keep its line naming the refused Python object.
        reason = next(
            (line.strip() for line in str(error).splitlines() if "WeightsUnpickler" in line),
            str(error).strip().splitlines()[0] if str(error).strip() else "",
        )
        raise ModelError(
            f"{path}: refused by torch.load(weights_only=True), which only reads tensors "
            f"and plain containers ({reason[:300]}); "
            "re-save the state_dict alone with torch.save(model.state_dict(), path)"
        ) from error
    except Exception as error:
        # torch.load on damaged bytes fails in many ways (zip, unpickler stack, storage
        # sizes: RuntimeError, IndexError, EOFError, ...); all mean the file is unusable.
        raise ModelError(
            f"{path}: not a readable torch checkpoint ({error}); the file may be truncated"
        ) from error


def _first(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:_KEYS_SHOWN])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > _KEYS_SHOWN else "")


def load_state_dict_checked(
    network: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str
) -> None:
    """Load weights with ``strict=True`` after checking names and shapes.

    :param network: the network to fill.
    :param state_dict: the weights.
    :param source: where the weights come from (for the message).
    :raises ModelError: naming the missing, unexpected and mis-shaped keys (first few of
        each and their counts) when the weights don't fit the network.
    """
    expected = network.state_dict()
    # Files from PyTorch < 0.4.1 have no BatchNorm step counters; they only matter for a
    # momentum-free BatchNorm, so start them at 0 as PyTorch itself does for such files.
    absent_counters = [
        key for key in expected if key.endswith("num_batches_tracked") and key not in state_dict
    ]
    if absent_counters:
        state_dict = {**state_dict, **{key: torch.tensor(0) for key in absent_counters}}
        LOGGER.debug("%s: %d BatchNorm counters absent, set to 0", source, len(absent_counters))
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    mis_shaped = [
        f"{key} {tuple(state_dict[key].shape)} != {tuple(value.shape)}"
        for key, value in expected.items()
        if key in state_dict and tuple(state_dict[key].shape) != tuple(value.shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_first(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_first(unexpected)}")
    if mis_shaped:
        problems.append(f"{len(mis_shaped)} key(s) of another shape: {_first(mis_shaped)}")
    if problems:
        architecture = getattr(network, "architecture", type(network).__name__)
        raise ModelError(
            f"{source}: the weights don't fit the network {architecture}: "
            + "; ".join(problems)
            + ". Check the backbone/kind chosen for this file."
        )
    network.load_state_dict(state_dict, strict=True)


def save_checkpoint(
    path: str | os.PathLike[str],
    network: nn.Module,
    class_names: Sequence[str],
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    **meta: Any,
) -> Path:
    """Write a network built by ``create_network`` in our checkpoint format, atomically.

    :param path: destination file (parent folders are created).
    :param network: the network; needs ``architecture``, ``align_corners``, ``num_classes``.
    :param class_names: one name per output class.
    :param mean: RGB mean for inputs in [0, 1].
    :param std: RGB standard deviation, same scale.
    :param meta: JSON-able provenance stored under ``"meta"``.
    :return: the written path.
    :raises ValueError: if the class names don't match the network or meta isn't JSON-able.
    """
    names = [str(name) for name in class_names]
    if len(names) != network.num_classes:
        raise ValueError(
            f"{len(names)} class names for a network with {network.num_classes} classes"
        )
    if len(mean) != 3 or len(std) != 3:
        raise ValueError("mean and std need 3 values (R, G, B)")
    try:
        json.dumps(meta)
    except TypeError as error:
        raise ValueError(f"checkpoint meta must be JSON-able: {error}") from error
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "architecture": dict(cast(dict[str, Any], network.architecture)),
        "state_dict": {
            key: value.detach().cpu().contiguous() for key, value in network.state_dict().items()
        },
        "class_names": names,
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "align_corners": bool(network.align_corners),
        "meta": dict(meta),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so a crash never leaves half a checkpoint.
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)
    LOGGER.info("saved checkpoint %s (%s)", path, payload["architecture"])
    return path


def checkpoint_from_payload(payload: Any, source: str) -> tuple[nn.Module, CheckpointMeta]:
    """Rebuild a network from an already loaded checkpoint dict in our format.

    :param payload: the dict read from the file.
    :param source: the file name, for messages.
    :return: ``(network in eval mode, meta)``.
    :raises ModelError: if the dict is not our format or its parts don't agree.
    """
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(
            f"{source}: not an anomaly_seg_ros checkpoint; use import_checkpoint() for "
            "VainF / NVIDIA / PEBAL files"
        )
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ModelError(
            f"{source}: checkpoint version {payload.get('version')!r} is not supported "
            f"(this package reads version {CHECKPOINT_VERSION})"
        )
    try:
        architecture = dict(payload["architecture"])
        meta = CheckpointMeta(
            class_names=tuple(str(name) for name in payload["class_names"]),
            architecture=architecture,
            mean=tuple(float(v) for v in payload["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in payload["std"]),  # type: ignore[arg-type]
            align_corners=bool(payload["align_corners"]),
            meta=dict(payload.get("meta", {})),
        )
        network = create_network(**architecture)
        state_dict = payload["state_dict"]
    except (KeyError, TypeError, ValueError) as error:
        raise ModelError(f"{source}: malformed checkpoint ({error})") from error
    if len(meta.class_names) != network.num_classes:
        raise ModelError(
            f"{source}: {len(meta.class_names)} class names for {network.num_classes} classes"
        )
    load_state_dict_checked(network, state_dict, source)
    return network.eval(), meta


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[nn.Module, CheckpointMeta]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    :param path: the file.
    :return: ``(network in eval mode on the CPU, meta)``.
    :raises ModelError: if the file is missing, unreadable, not our format, or its
        weights don't fit its architecture.
    """
    return checkpoint_from_payload(read_torch_file(path), str(path))
