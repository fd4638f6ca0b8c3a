"""Build the network and optimizer a training config describes."""

from __future__ import annotations

import torch
from torch import nn

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.networks import create_network
from anomaly_seg_ros.networks.checkpoint import load_checkpoint
from training.config import TrainConfig


def build_network(config: TrainConfig) -> nn.Module:
    """The configured network, initialised from ``init_checkpoint`` when given.

    :raises ConfigError: the init checkpoint has another architecture.
    """
    options = {"width_mult": config.width_mult} if config.backbone == "mobilenetv2" else {}
    try:
        network = create_network(
            config.backbone, config.num_classes, config.output_stride, **options
        )
    except ValueError as error:
        raise ConfigError(f"cannot build the network: {error}") from error
    if config.init_checkpoint:
        initial, meta = load_checkpoint(config.init_checkpoint)
        if meta.architecture != network.architecture:
            raise ConfigError(
                f"init_checkpoint {config.init_checkpoint} is a {meta.architecture} network "
                f"but the config builds {network.architecture}; change backbone/width_mult/"
                "num_classes/output_stride to match"
            )
        network.load_state_dict(initial.state_dict())
    return network


def build_optimizer(config: TrainConfig, network: nn.Module) -> torch.optim.Optimizer:
    """SGD (momentum) or AdamW over all parameters."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            network.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
    return torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
