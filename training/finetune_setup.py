"""Set-up pieces of anomaly fine-tuning: what is frozen, the schedule, torchrun, resuming."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from anomaly_seg_ros.errors import ConfigError, ModelError
from anomaly_seg_ros.networks.checkpoint import read_torch_file

LOGGER = logging.getLogger(__name__)
STATE_FORMAT = "anomaly_seg_ros/finetune_state"


def decoder_modules(network: nn.Module) -> list[nn.Module]:
    """The decoder (everything after the backbone) of the package's networks.

    :raises ConfigError: the network has no known decoder layout.
    """
    decoder = getattr(network, "decoder_modules", None)
    if callable(decoder):
        return list(decoder())
    if hasattr(network, "backbone") and hasattr(network, "classifier"):  # VainF DeepLabv3+
        return [network.get_submodule("classifier")]
    names = ("aspp", "bot_fine", "bot_aspp", "final")  # NVIDIA DeepWV3Plus
    if all(hasattr(network, name) for name in names):
        return [network.get_submodule(name) for name in names]
    raise ConfigError(f"train_part decoder: no known decoder in {type(network).__name__}")


def final_conv(network: nn.Module) -> nn.Module:
    """The network's final 1×1 classification convolution (``network.final_conv``).

    :raises ConfigError: the network does not name one.
    """
    module = getattr(network, "final_conv", None)
    if not isinstance(module, nn.Module):
        raise ConfigError(f"{type(network).__name__} has no final_conv to fine-tune")
    return module


#: What anomaly fine-tuning may train (``FinetuneConfig.train_part``).
TRAIN_PARTS = ("final_conv", "block", "decoder")


def classification_block(network: nn.Module) -> nn.Module:
    """The module holding ``final_conv``: the classification block after feature fusion
    (VainF ``classifier.classifier`` = 3×3 conv + BN + ReLU + 1×1; NVIDIA ``final``).

    :raises ConfigError: the network does not name its final convolution.
    """
    path = getattr(network, "final_conv_path", None)
    if not path or "." not in path:
        raise ConfigError(f"train_part block: {type(network).__name__} has no final_conv_path")
    return network.get_submodule(path.rsplit(".", 1)[0])


def trainable_modules(network: nn.Module, part: str) -> list[nn.Module]:
    """Freeze every parameter, then unfreeze ``part`` (one of :data:`TRAIN_PARTS`).

    :raises ConfigError: unknown part, or the network lacks it.
    """
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    modules: list[nn.Module]
    if part == "final_conv":
        modules = [final_conv(network)]
    elif part == "block":
        modules = [classification_block(network)]
    elif part == "decoder":
        modules = decoder_modules(network)
    else:
        raise ConfigError(f"train_part {part!r}: choose one of {', '.join(TRAIN_PARTS)}")
    for module in modules:
        for parameter in module.parameters():
            parameter.requires_grad_(True)
    return modules


def set_finetune_mode(network: nn.Module, modules: list[nn.Module]) -> None:
    """Eval mode everywhere (frozen BN statistics), train mode for the trained modules
    except their BatchNorms, whose statistics also stay frozen."""
    network.eval()
    for module in modules:
        module.train()
        for child in module.modules():
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                child.eval()


def poly_schedule(total_steps: int, power: float) -> Callable[[int], float]:
    """LR multiplier ``(1 - step / total) ** power`` for ``LambdaLR``."""
    return lambda step: max(0.0, 1.0 - step / max(1, total_steps)) ** power


def load_state(
    path: Path, network: nn.Module, objects: dict[str, Any]
) -> tuple[int, list[dict[str, Any]]]:
    """Resume from ``path`` if it exists: trained weights, optimizer, schedule, scaler."""
    if not path.is_file():
        return 0, []
    state = read_torch_file(path)
    if state.get("format") != STATE_FORMAT:
        raise ModelError(f"{path} is not a fine-tuning state file; move it away to start anew")
    missing = set(state["trainable"]) - {name for name, _ in network.named_parameters()}
    if missing:
        raise ModelError(f"{path} was written for another network ({sorted(missing)[:3]}...)")
    parameters = dict(network.named_parameters())
    with torch.no_grad():
        for name, value in state["trainable"].items():
            parameters[name].copy_(value)
    for key, target in objects.items():
        target.load_state_dict(state[key])
    LOGGER.info("resumed %s after epoch %d", path, state["epoch"])
    return int(state["epoch"]), list(state["history"])


def save_state(
    path: Path,
    network: nn.Module,
    objects: dict[str, Any],
    epoch: int,
    history: list[dict[str, Any]],
) -> None:
    state = {
        "format": STATE_FORMAT,
        "epoch": epoch,
        "trainable": {
            n: p.detach().cpu() for n, p in network.named_parameters() if p.requires_grad
        },
        "history": history,
        **{key: target.state_dict() for key, target in objects.items()},
    }
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)  # a crash never leaves half a state file
