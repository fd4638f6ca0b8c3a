"""NVIDIA DeepWV3Plus: DeepLabv3+ over WideResNet38, the network of PEBAL and the paper.

Module names match NVIDIA semantic-segmentation (sdcnet branch) without the DataParallel
``module.`` prefix: the trunk parts ``mod1..mod7, pool2, pool3`` at top level,
``aspp.features.{0..3}`` and ``aspp.img_conv`` (each conv ``.0``, BN ``.1``),
``bot_fine``, ``bot_aspp`` (1×1, no bias, no BN) and
``final.{0,1,3,4,6}`` (6 = the final 1×1 convolution, without bias).

The decoder works at stride 2 (``mod2``'s resolution), so ``forward`` returns logits at
half the input size. Every upsampling uses ``align_corners=True`` like the original.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from anomaly_seg_ros.networks.base import SegmentationNetwork
from anomaly_seg_ros.networks.deeplabv3plus import conv_bn_relu
from anomaly_seg_ros.networks.wider_resnet import wider_resnet38_modules

#: ASPP dilation rates per output stride (NVIDIA doubles 6/12/18 at stride 8).
WRN_ASPP_RATES: dict[int, tuple[int, int, int]] = {8: (12, 24, 36), 16: (6, 12, 18)}
_TRUNK_CHANNELS = 4096
_FINE_CHANNELS = 128
_ASPP_CHANNELS = 256


class WideASPP(nn.Module):
    """NVIDIA's ASPP: image-level branch first, then 1×1 and three dilated 3×3 branches.

    The five 256-channel outputs are concatenated (1280 channels) without projection;
    ``bot_aspp`` of the network projects them.

    :param in_channels: trunk channels.
    :param rates: dilations of the 3×3 branches.
    """

    def __init__(self, in_channels: int, rates: tuple[int, int, int]) -> None:
        super().__init__()
        branches = [conv_bn_relu(in_channels, _ASPP_CHANNELS, 1)]
        branches += [conv_bn_relu(in_channels, _ASPP_CHANNELS, 3, rate) for rate in rates]
        self.features = nn.ModuleList(branches)
        self.img_pooling = nn.AdaptiveAvgPool2d(1)
        self.img_conv = conv_bn_relu(in_channels, _ASPP_CHANNELS, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: (B, C, h, w). :return: (B, 1280, h, w)."""
        # Upsampling the 1×1 image feature is a broadcast (exact for align_corners=True).
        image_level = self.img_conv(self.img_pooling(x)).expand(-1, -1, x.shape[-2], x.shape[-1])
        return torch.cat([image_level, *[branch(x) for branch in self.features]], dim=1)


class DeepWV3Plus(SegmentationNetwork):
    """WideResNet38 DeepLabv3+; ``forward`` gives stride-2 logits, not upsampled.

    :param num_classes: number of classes.
    :param output_stride: 8 (as published) or 16.
    :param architecture: ``create_network`` keyword arguments rebuilding this network.
    :raises ValueError: for an unsupported output stride.
    """

    #: NVIDIA's Upsample uses align_corners=True everywhere.
    align_corners = True
    #: Stride of the logits relative to the input (the decoder runs on mod2's features).
    logit_stride = 2
    final_conv_path = "final.6"
    # The trunk parts are registered by name in __init__ (NVIDIA's attribute names).
    mod1: nn.Sequential
    mod2: nn.Sequential
    mod3: nn.Sequential
    mod4: nn.Sequential
    mod5: nn.Sequential
    mod6: nn.Sequential
    mod7: nn.Sequential
    pool2: nn.MaxPool2d
    pool3: nn.MaxPool2d

    def __init__(
        self, num_classes: int, output_stride: int = 8, architecture: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        if output_stride not in WRN_ASPP_RATES:
            raise ValueError(
                f"DeepWV3Plus output_stride must be one of {sorted(WRN_ASPP_RATES)}, "
                f"got {output_stride}"
            )
        for name, module in wider_resnet38_modules(output_stride).items():
            self.add_module(name, module)
        self.aspp = WideASPP(_TRUNK_CHANNELS, WRN_ASPP_RATES[output_stride])
        self.bot_fine = nn.Conv2d(_FINE_CHANNELS, 48, kernel_size=1, bias=False)
        self.bot_aspp = nn.Conv2d(5 * _ASPP_CHANNELS, _ASPP_CHANNELS, kernel_size=1, bias=False)
        self.final = nn.Sequential(
            nn.Conv2d(_ASPP_CHANNELS + 48, 256, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, num_classes, kernel_size=1, bias=False),
        )
        self.num_classes = num_classes
        self.architecture = dict(
            architecture
            or {
                "backbone": "wideresnet38",
                "num_classes": num_classes,
                "output_stride": output_stride,
            }
        )
        self.init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: (B, 3, H, W) float normalized RGB.

        :return: (B, num_classes, ceil(H/2), ceil(W/2)) logits.
        """
        fine = self.mod2(self.pool2(self.mod1(x)))
        deep = self.mod3(self.pool3(fine))
        deep = self.mod7(self.mod6(self.mod5(self.mod4(deep))))
        coarse = F.interpolate(
            self.bot_aspp(self.aspp(deep)),
            size=fine.shape[-2:],
            mode="bilinear",
            align_corners=True,
        )
        logits: torch.Tensor = self.final(torch.cat([self.bot_fine(fine), coarse], dim=1))
        return logits
