"""DeepLabv3+ (ASPP + decoder) over a ResNet or MobileNetV2 backbone, VainF layout.

Module names match VainF DeepLabV3Plus-Pytorch, so its ``model_state`` loads with
``strict=True``: ``backbone.*``, ``classifier.project.{0,1}``,
``classifier.aspp.convs.{0..4}``, ``classifier.aspp.project.{0,1}``,
``classifier.classifier.{0,1,3}`` (3 = the final 1×1 convolution, with bias).

``decoder="separable"`` replaces the decoder's 3×3 convolution by the DeepLabv3+ paper's
depthwise-separable one (Chen et al. 2018, §3.2: depthwise 3×3 → BN → ReLU → pointwise
1×1 → BN → ReLU), ``classifier.classifier.{0,1,3,4,6}`` (6 = the final 1×1); VainF
checkpoints hold the dense layout.

The network returns logits at the decoder resolution (stride 4) and does not upsample
them: the anomaly head does that, and the OoD loss of fine-tuning wants them as they are.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from anomaly_seg_ros.networks.base import SegmentationNetwork

#: ASPP dilation rates per backbone output stride (DeepLab convention).
ASPP_RATES: dict[int, tuple[int, int, int]] = {8: (12, 24, 36), 16: (6, 12, 18)}
_ASPP_CHANNELS = 256
_LOW_LEVEL_PROJECTION = 48


def conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1
) -> nn.Sequential:
    """Conv (no bias) → BN → ReLU as ``Sequential`` with names ``0, 1, 2``."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=dilation * (kernel_size // 2),
            dilation=dilation,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ASPPPooling(nn.Sequential):
    """Image-level branch: global average → 1×1 conv → BN → ReLU, broadcast back.

    Names ``0`` (pool), ``1`` (conv), ``2`` (BN), ``3`` (ReLU) as in VainF.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: (B, C, h, w). :return: (B, out_channels, h, w), constant over space."""
        pooled: torch.Tensor = super().forward(x)  # type: ignore[no-untyped-call]
        # Bilinear upsampling of a 1×1 map is a broadcast whatever align_corners says;
        # expand is exact and exports to a cheap ONNX Expand.
        return pooled.expand(-1, -1, x.shape[-2], x.shape[-1])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1×1, three dilated 3×3 and an image-level branch.

    :param in_channels: channels of the backbone's deepest features.
    :param atrous_rates: dilations of the three 3×3 branches.
    """

    def __init__(self, in_channels: int, atrous_rates: tuple[int, int, int]) -> None:
        super().__init__()
        branches: list[nn.Module] = [conv_bn_relu(in_channels, _ASPP_CHANNELS, 1)]
        branches += [conv_bn_relu(in_channels, _ASPP_CHANNELS, 3, rate) for rate in atrous_rates]
        branches.append(ASPPPooling(in_channels, _ASPP_CHANNELS))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            nn.Conv2d(len(branches) * _ASPP_CHANNELS, _ASPP_CHANNELS, 1, bias=False),
            nn.BatchNorm2d(_ASPP_CHANNELS),
            nn.ReLU(inplace=True),
            nn.Dropout(0.1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: (B, in_channels, h, w). :return: (B, 256, h, w)."""
        projected: torch.Tensor = self.project(torch.cat([b(x) for b in self.convs], dim=1))
        return projected


def classification_block(
    in_channels: int, channels: int, num_classes: int, decoder: str
) -> nn.Sequential:
    """The decoder's 3×3 convolution + BN + ReLU, then the final 1×1 to the logits.

    :param in_channels: fused channels (projected low-level ⊕ ASPP).
    :param channels: channels after the 3×3 convolution.
    :param num_classes: number of logits.
    :param decoder: ``dense`` (VainF: one 3×3 convolution, the final 1×1 at index 3) or
        ``separable`` (depthwise 3×3 → BN → ReLU → pointwise 1×1 → BN → ReLU, the final
        1×1 at index 6).
    :return: the block; its last module is the final 1×1 (with bias).
    """
    final = nn.Conv2d(channels, num_classes, 1)
    if decoder == "separable":
        return nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            final,
        )
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
        final,
    )


class DeepLabHeadV3Plus(nn.Module):
    """ASPP on the deep features, fused with projected stride-4 features, then classified.

    :param in_channels: channels of the deep features.
    :param low_level_channels: channels of the stride-4 features.
    :param num_classes: number of output logits.
    :param atrous_rates: ASPP dilations.
    :param decoder: ``dense`` or ``separable`` (see :func:`classification_block`).
    """

    def __init__(
        self,
        in_channels: int,
        low_level_channels: int,
        num_classes: int,
        atrous_rates: tuple[int, int, int],
        decoder: str = "dense",
    ) -> None:
        super().__init__()
        self.project = nn.Sequential(
            nn.Conv2d(low_level_channels, _LOW_LEVEL_PROJECTION, 1, bias=False),
            nn.BatchNorm2d(_LOW_LEVEL_PROJECTION),
            nn.ReLU(inplace=True),
        )
        self.aspp = ASPP(in_channels, atrous_rates)
        self.classifier = classification_block(
            _LOW_LEVEL_PROJECTION + _ASPP_CHANNELS, _ASPP_CHANNELS, num_classes, decoder
        )

    def forward(self, low_level: torch.Tensor, high_level: torch.Tensor) -> torch.Tensor:
        """:return: (B, num_classes, h4, w4) logits at the low-level features' size."""
        low = self.project(low_level)
        high = F.interpolate(
            self.aspp(high_level), size=low.shape[-2:], mode="bilinear", align_corners=False
        )
        logits: torch.Tensor = self.classifier(torch.cat([low, high], dim=1))
        return logits


class DeepLabV3Plus(SegmentationNetwork):
    """Backbone + DeepLabv3+ head; ``forward`` gives stride-4 logits, not upsampled.

    :param backbone: a module returning ``(low_level, high_level)`` features and
        exposing ``low_level_channels`` / ``out_channels``.
    :param num_classes: number of classes.
    :param output_stride: the backbone's output stride (selects the ASPP rates).
    :param architecture: keyword arguments that rebuild this network through
        ``create_network(**architecture)``.
    :param decoder: ``dense`` (VainF) or ``separable`` (see :func:`classification_block`).
    :raises ValueError: for an output stride without ASPP rates.
    """

    #: Bilinear convention the network was trained with (VainF: False).
    align_corners = False
    #: Stride of the logits relative to the input.
    logit_stride = 4
    final_conv_path = "classifier.classifier.3"

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        output_stride: int,
        architecture: dict[str, Any],
        decoder: str = "dense",
    ) -> None:
        super().__init__()
        if output_stride not in ASPP_RATES:
            raise ValueError(
                f"DeepLabv3+ output_stride must be one of {sorted(ASPP_RATES)}, "
                f"got {output_stride}"
            )
        self.backbone = backbone
        self.classifier = DeepLabHeadV3Plus(
            int(backbone.out_channels),  # type: ignore[arg-type]
            int(backbone.low_level_channels),  # type: ignore[arg-type]
            num_classes,
            ASPP_RATES[output_stride],
            decoder,
        )
        # The class attribute names the VainF (dense) layout, which importers look for.
        self.final_conv_path = f"classifier.classifier.{len(self.classifier.classifier) - 1}"
        self.num_classes = num_classes
        self.architecture = dict(architecture)
        self.init_weights(self.classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: (B, 3, H, W) float normalized RGB.

        :return: (B, num_classes, h, w) logits at stride 4 (about H/4 × W/4).
        """
        low_level, high_level = self.backbone(x)
        logits: torch.Tensor = self.classifier(low_level, high_level)
        return logits
