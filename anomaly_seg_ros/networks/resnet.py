"""ResNet-50/101 feature extractor with dilated last stages (output stride 8 or 16).

The module names follow torchvision's ``ResNet`` (``conv1, bn1, layer1..4``; blocks with
``conv1..3, bn1..3, downsample.0/1``) so that the backbone part of a VainF
DeepLabV3Plus-Pytorch state_dict, or a torchvision ImageNet state_dict without ``fc``,
loads as it is. There is no ``avgpool``/``fc``: the network is only a feature extractor.
"""

from __future__ import annotations

import torch
from torch import nn

#: Blocks per stage (layer1..layer4) of the supported depths.
RESNET_LAYERS: dict[str, tuple[int, int, int, int]] = {
    "resnet50": (3, 4, 6, 3),
    "resnet101": (3, 4, 23, 3),
}

#: Which of layer2..layer4 trade their stride-2 for dilation, per output stride
#: (torchvision's ``replace_stride_with_dilation``).
_DILATE_STAGES: dict[int, tuple[bool, bool, bool]] = {
    8: (False, True, True),
    16: (False, False, True),
    32: (False, False, False),
}


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck: the stride sits on the 3×3 convolution.

    :param inplanes: input channels.
    :param planes: bottleneck width; the block outputs ``planes * 4`` channels.
    :param stride: stride of the 3×3 convolution (and of the shortcut projection).
    :param dilation: dilation (= padding) of the 3×3 convolution.
    :param downsample: shortcut projection, or None for the identity.
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes,
            planes,
            kernel_size=3,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            bias=False,
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: (B, inplanes, H, W). :return: (B, planes*4, H/stride, W/stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        result: torch.Tensor = self.relu(out + identity)
        return result


class ResNet(nn.Module):
    """Bottleneck ResNet returning the stride-4 (layer1) and deepest (layer4) features.

    :param layers: blocks per stage, e.g. ``(3, 4, 23, 3)`` for ResNet-101.
    :param output_stride: 8, 16 or 32; stages past it use dilation instead of stride.
    :raises ValueError: for an unsupported output stride.
    """

    def __init__(self, layers: tuple[int, int, int, int], output_stride: int = 16) -> None:
        super().__init__()
        if output_stride not in _DILATE_STAGES:
            raise ValueError(
                f"ResNet output_stride must be one of {sorted(_DILATE_STAGES)}, "
                f"got {output_stride}"
            )
        dilate = _DILATE_STAGES[output_stride]
        self.inplanes = 64
        self.dilation = 1
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2, dilate=dilate[0])
        self.layer3 = self._make_layer(256, layers[2], stride=2, dilate=dilate[1])
        self.layer4 = self._make_layer(512, layers[3], stride=2, dilate=dilate[2])
        #: Channels of the two returned feature maps (the decoder needs them).
        self.low_level_channels = 64 * Bottleneck.expansion
        self.out_channels = 512 * Bottleneck.expansion
        self._init_weights()

    def _make_layer(
        self, planes: int, blocks: int, stride: int = 1, dilate: bool = False
    ) -> nn.Sequential:
        # As torchvision: a dilated stage keeps the previous dilation in its first block
        # and multiplies it by the dropped stride for the following blocks.
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(
                    self.inplanes,
                    planes * Bottleneck.expansion,
                    kernel_size=1,
                    stride=stride,
                    bias=False,
                ),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        modules = [Bottleneck(self.inplanes, planes, stride, previous_dilation, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        modules += [
            Bottleneck(self.inplanes, planes, dilation=self.dilation) for _ in range(1, blocks)
        ]
        return nn.Sequential(*modules)

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute the decoder's two inputs.

        :param x: (B, 3, H, W) normalized image.
        :return: ``(low_level, high_level)``: (B, 256, H/4, W/4) and
            (B, 2048, H/os, W/os) features.
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        low_level = self.layer1(x)
        x = self.layer4(self.layer3(self.layer2(low_level)))
        return low_level, x


def resnet(name: str, output_stride: int = 16) -> ResNet:
    """Build ``resnet50`` or ``resnet101``.

    :param name: a key of :data:`RESNET_LAYERS`.
    :param output_stride: 8, 16 or 32.
    :return: a randomly initialised :class:`ResNet`.
    :raises ValueError: for an unknown name or output stride.
    """
    if name not in RESNET_LAYERS:
        raise ValueError(f"unknown ResNet {name!r}; valid: {sorted(RESNET_LAYERS)}")
    return ResNet(RESNET_LAYERS[name], output_stride)
