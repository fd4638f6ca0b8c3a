"""MobileNetV2 feature extractor as in VainF DeepLabV3Plus-Pytorch.

VainF's MobileNetV2 differs from torchvision's in ways its weights were trained with, so
we reproduce them:

* every convolution is built with padding 0; an inverted-residual block pads its *input*
  with "fixed padding" for its 3×3 depthwise convolution (``F.pad`` before the block, so
  the 1×1 expansion also sees the zero border), and the stem 3×3/2 convolution is not
  padded at all (a 512-pixel side becomes 255);
* output stride 8 or 16 by turning later strides into dilation;
* DeepLab uses ``features[0:4]`` (stride 4, 24 channels) as ``low_level_features`` and
  ``features[4:-1]`` (320 channels, the final 1×1 to 1280 dropped) as
  ``high_level_features``; the slices keep the original indices as module names
  (``high_level_features.4`` … ``.17``), which is how the state_dict keys look.

``width_mult`` scales the channels (rounded to multiples of 8) for small demo models;
VainF only published ``width_mult=1.0``, where both roundings agree.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

#: (expansion t, channels c, repeats n, first stride s) of the seven block groups.
_INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
#: ``features`` index where the high-level part starts (after the stride-4 features).
_LOW_LEVEL_END = 4


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10 % down.

    :param value: the scaled channel count.
    :param divisor: the multiple.
    :return: the rounded channel count (at least ``divisor``).
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNReLU(nn.Sequential):
    """Convolution (no padding, no bias) → BatchNorm → ReLU6 (names ``0, 1, 2``)."""

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
    ) -> None:
        super().__init__(
            nn.Conv2d(
                in_planes,
                out_planes,
                kernel_size,
                stride,
                0,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_planes),
            nn.ReLU6(inplace=True),
        )


def fixed_padding(kernel_size: int, dilation: int) -> tuple[int, int, int, int]:
    """``F.pad`` amounts (left, right, top, bottom) that keep a dilated kernel's size.

    :param kernel_size: kernel side.
    :param dilation: dilation of the kernel.
    :return: padding for ``F.pad``.
    """
    effective = kernel_size + (kernel_size - 1) * (dilation - 1)
    begin = (effective - 1) // 2
    end = effective - 1 - begin
    return begin, end, begin, end


class InvertedResidual(nn.Module):
    """Expansion 1×1 → depthwise 3×3 (strided or dilated) → linear 1×1 (``conv``).

    :param inp: input channels.
    :param oup: output channels.
    :param stride: 1 or 2.
    :param dilation: dilation of the depthwise convolution.
    :param expand_ratio: hidden channels = ``round(inp * expand_ratio)``.
    """

    def __init__(self, inp: int, oup: int, stride: int, dilation: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(inp, hidden, kernel_size=1))
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, dilation=dilation, groups=hidden),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.input_padding = fixed_padding(3, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: (B, inp, H, W). :return: (B, oup, ceil(H/stride), ceil(W/stride))."""
        out: torch.Tensor = self.conv(F.pad(x, self.input_padding))
        return x + out if self.use_res_connect else out


class MobileNetV2(nn.Module):
    """VainF's dilated MobileNetV2, split into low- and high-level features.

    :param output_stride: 8 or 16 (32 = no dilation).
    :param width_mult: channel multiplier (1.0 for the published checkpoints).
    :raises ValueError: for an unsupported output stride or a non-positive width.
    """

    def __init__(self, output_stride: int = 16, width_mult: float = 1.0) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"MobileNetV2 output_stride must be 8, 16 or 32, got {output_stride}")
        if width_mult <= 0:
            raise ValueError(f"MobileNetV2 width_mult must be > 0, got {width_mult}")
        input_channel = make_divisible(32 * width_mult)
        features: list[nn.Module] = [ConvBNReLU(3, input_channel, stride=2)]
        current_stride, dilation = 2, 1
        for expand, channels, repeats, stride in _INVERTED_RESIDUAL_SETTING:
            output_channel = make_divisible(channels * width_mult)
            previous_dilation = dilation
            if current_stride == output_stride:
                # Past the target stride: keep the resolution and dilate instead.
                dilation *= stride
                stride = 1
            else:
                current_stride *= stride
            for index in range(repeats):
                features.append(
                    InvertedResidual(
                        input_channel,
                        output_channel,
                        stride if index == 0 else 1,
                        previous_dilation if index == 0 else dilation,
                        expand,
                    )
                )
                input_channel = output_channel
        named = list(enumerate(features))
        self.low_level_features = nn.Sequential(
            OrderedDict((str(i), m) for i, m in named[:_LOW_LEVEL_END])
        )
        self.high_level_features = nn.Sequential(
            OrderedDict((str(i), m) for i, m in named[_LOW_LEVEL_END:])
        )
        #: Channels of the two returned feature maps (the decoder needs them).
        last_low_level = features[_LOW_LEVEL_END - 1]
        assert isinstance(last_low_level, InvertedResidual)  # by construction
        self.low_level_channels: int = last_low_level.conv[-1].num_features  # type: ignore[assignment]
        self.out_channels = input_channel
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute the decoder's two inputs.

        :param x: (B, 3, H, W) normalized image.
        :return: ``(low_level, high_level)`` at stride 4 and at the output stride
            (sides ``≈ (H-1)/4`` etc.: the stem is unpadded).
        """
        low_level = self.low_level_features(x)
        return low_level, self.high_level_features(low_level)
