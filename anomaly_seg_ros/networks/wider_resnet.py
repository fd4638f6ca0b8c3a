"""WideResNet38 (variant A2, pre-activation identity blocks) as used by NVIDIA DeepWV3Plus.

Names follow NVIDIA semantic-segmentation (sdcnet branch, from mapillary inplace_abn):
``mod1.conv1``; ``mod{2..7}.block{i}`` with ``bn1`` (a ``Sequential(BN, ReLU)``, so its
weights are ``bn1.0.*``), ``convs.{conv1, bn2, conv2[, bn3, conv3]}`` and
``proj_conv`` where the shortcut needs a projection. ``mod6``/``mod7`` are bottlenecks
with a channel dropout (``convs.dropout``, p = 0.3 / 0.5) before their last convolution.

Strides: ``mod1`` full resolution, ``pool2`` → 2, ``pool3`` → 4, ``mod4`` block 1 → 8.
At output stride 8 (the published weights) ``mod5`` is dilated 2 and ``mod6``/``mod7``
4; output stride 16 is our extension (``mod5`` block 1 strided, ``mod6``/``mod7``
dilated 2), with the same weights.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

#: Blocks per module mod2..mod7 and their channels (two = basic, three = bottleneck).
WRN38_STRUCTURE = (3, 3, 6, 3, 1, 1)
WRN38_CHANNELS: tuple[tuple[int, ...], ...] = (
    (128, 128),
    (256, 256),
    (512, 512),
    (512, 1024),
    (512, 1024, 2048),
    (1024, 2048, 4096),
)
#: Channel dropout before the last convolution of mod6 and mod7.
_DROPOUT = {5: 0.3, 6: 0.5}
#: Per output stride: (module index 2..7 whose first block has stride 2, dilation per
#: module index).
_LAYOUT = {
    8: ({4}, {2: 1, 3: 1, 4: 1, 5: 2, 6: 4, 7: 4}),
    16: ({4, 5}, {2: 1, 3: 1, 4: 1, 5: 1, 6: 2, 7: 2}),
}


def bn_relu(channels: int) -> nn.Sequential:
    """BatchNorm → ReLU as one module (index ``0`` holds the BatchNorm weights)."""
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class IdentityResidualBlock(nn.Module):
    """Pre-activation residual block: ``x + convs(bn1(x))`` (projection when needed).

    :param in_channels: input channels.
    :param channels: 2 values (two 3×3 convs) or 3 values (1×1, 3×3, 1×1 bottleneck).
    :param stride: stride of the first convolution and of the projection.
    :param dilation: dilation of the 3×3 convolutions.
    :param dropout: channel dropout probability before the last convolution, or None.
    :raises ValueError: for a channel spec that is neither 2 nor 3 values.
    """

    def __init__(
        self,
        in_channels: int,
        channels: tuple[int, ...],
        stride: int = 1,
        dilation: int = 1,
        dropout: float | None = None,
    ) -> None:
        super().__init__()
        if len(channels) not in (2, 3):
            raise ValueError(f"channels must have 2 or 3 values, got {channels}")
        self.bn1 = bn_relu(in_channels)
        if len(channels) == 2:
            layers = [
                ("conv1", self._conv3x3(in_channels, channels[0], stride, dilation)),
                ("bn2", bn_relu(channels[0])),
                ("conv2", self._conv3x3(channels[0], channels[1], 1, dilation)),
            ]
        else:
            layers = [
                ("conv1", nn.Conv2d(in_channels, channels[0], 1, stride=stride, bias=False)),
                ("bn2", bn_relu(channels[0])),
                ("conv2", self._conv3x3(channels[0], channels[1], 1, dilation)),
                ("bn3", bn_relu(channels[1])),
                ("conv3", nn.Conv2d(channels[1], channels[2], 1, bias=False)),
            ]
        if dropout is not None:
            # Dropout2d, as in the original: its A2 constructor rebinds nn.Dropout to it.
            layers.insert(len(layers) - 1, ("dropout", nn.Dropout2d(dropout)))
        self.convs = nn.Sequential(OrderedDict(layers))
        self.proj_conv: nn.Conv2d | None = None
        if stride != 1 or in_channels != channels[-1]:
            self.proj_conv = nn.Conv2d(in_channels, channels[-1], 1, stride=stride, bias=False)

    @staticmethod
    def _conv3x3(in_channels: int, out_channels: int, stride: int, dilation: int) -> nn.Conv2d:
        return nn.Conv2d(
            in_channels,
            out_channels,
            3,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            bias=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: (B, in_channels, H, W). :return: (B, channels[-1], H/stride, W/stride)."""
        activated = self.bn1(x)
        # The projection shortcut reads the pre-activated input, the identity the raw one.
        shortcut = x if self.proj_conv is None else self.proj_conv(activated)
        residual: torch.Tensor = self.convs(activated)
        return residual + shortcut


def wider_resnet38_modules(output_stride: int = 8) -> OrderedDict[str, nn.Module]:
    """Build the WideResNet38-A2 trunk as named parts ``mod1..mod7, pool2, pool3``.

    :param output_stride: 8 (published weights) or 16.
    :return: the parts in NVIDIA's registration order.
    :raises ValueError: for another output stride.
    """
    if output_stride not in _LAYOUT:
        raise ValueError(f"WideResNet38 output_stride must be 8 or 16, got {output_stride}")
    strided, dilations = _LAYOUT[output_stride]
    parts: OrderedDict[str, nn.Module] = OrderedDict()
    parts["mod1"] = nn.Sequential(
        OrderedDict([("conv1", nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False))])
    )
    in_channels = 64
    for index, (blocks, channels) in enumerate(zip(WRN38_STRUCTURE, WRN38_CHANNELS), start=2):
        named_blocks = []
        for block in range(blocks):
            stride = 2 if block == 0 and index in strided else 1
            named_blocks.append(
                (
                    f"block{block + 1}",
                    IdentityResidualBlock(
                        in_channels,
                        channels,
                        stride=stride,
                        dilation=dilations[index],
                        dropout=_DROPOUT.get(index),
                    ),
                )
            )
            in_channels = channels[-1]
        parts[f"mod{index}"] = nn.Sequential(OrderedDict(named_blocks))
    parts["pool2"] = nn.MaxPool2d(3, stride=2, padding=1)
    parts["pool3"] = nn.MaxPool2d(3, stride=2, padding=1)
    return parts
