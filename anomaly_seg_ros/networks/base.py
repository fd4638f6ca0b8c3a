"""What the segmentation networks share: the final convolution and weight initialisation.

Adds no parameters, so the public checkpoints' state_dict keys are unchanged.
"""

from __future__ import annotations

from typing import Any, cast

from torch import nn


class SegmentationNetwork(nn.Module):
    """Base of the networks (contract in :mod:`anomaly_seg_ros.networks`).

    Subclasses set :attr:`final_conv_path`, ``align_corners`` and ``logit_stride``, and
    ``num_classes`` / ``architecture`` in ``__init__``.
    """

    #: Dotted name of the last 1×1 classification convolution (its state_dict prefix).
    final_conv_path: str
    #: Bilinear convention the network was trained with.
    align_corners: bool
    #: Stride of the logits relative to the input.
    logit_stride: int
    num_classes: int
    architecture: dict[str, Any]

    @property
    def final_conv(self) -> nn.Conv2d:
        """The last 1×1 classification convolution (what head-only fine-tuning trains)."""
        return cast(nn.Conv2d, self.get_submodule(self.final_conv_path))

    @staticmethod
    def init_weights(root: nn.Module) -> None:
        """He-normal convolutions, unit-scale zero-shift BatchNorms, everywhere in ``root``.

        :param root: the part to initialise (e.g. the head only, over a pretrained trunk).
        """
        for module in root.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
