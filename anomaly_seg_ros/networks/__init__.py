"""Segmentation networks (torch): DeepLabv3+ over ResNet, MobileNetV2 and WideResNet38.

Importing this package does not import torch; :func:`create_network` imports the
builders when called, so the core can look at the names without torch installed.

Every network built here follows one contract:

* ``forward(x)`` takes a (B, 3, H, W) float normalized RGB batch and returns
  (B, C, h, w) logits at the decoder resolution, not upsampled
  (``network.logit_stride``: 4 for the VainF layout, 2 for WideResNet38);
* ``network.align_corners`` is the bilinear convention it was trained with;
* ``network.architecture`` is a JSON-able dict with ``create_network(**architecture)``
  rebuilding the same network (random weights);
* ``network.final_conv`` is the last 1×1 classification convolution;
* ``network.num_classes`` is C.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

#: Backbone names :func:`create_network` accepts.
BACKBONES = ("resnet50", "resnet101", "mobilenetv2", "wideresnet38")
#: DeepLabv3+ decoder layouts :func:`create_network` accepts (``decoder=``): ``dense`` is
#: VainF's 3×3 convolution (the default, what public checkpoints hold), ``separable`` the
#: depthwise-separable 3×3 of the DeepLabv3+ paper (about 9× fewer multiply-adds).
DECODERS = ("dense", "separable")


def create_network(
    backbone: str, num_classes: int = 19, output_stride: int = 16, **kwargs: Any
) -> nn.Module:
    """Build a randomly initialised segmentation network.

    :param backbone: one of :data:`BACKBONES`. ``wideresnet38`` builds NVIDIA's
        DeepWV3Plus (trained at output stride 8).
    :param num_classes: number of output logits.
    :param output_stride: 8 or 16.
    :param kwargs: ``width_mult`` (float, mobilenetv2 only); ``decoder`` (one of
        :data:`DECODERS`, not for wideresnet38).
    :return: the network in training mode, with the attributes of the package contract.
    :raises ValueError: for an unknown backbone, an unsupported output stride, a bad
        class count or an option the backbone does not take.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; valid names: {', '.join(BACKBONES)}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if output_stride not in (8, 16):
        raise ValueError(f"output_stride must be 8 or 16, got {output_stride!r}")
    allowed = {"width_mult"} if backbone == "mobilenetv2" else set()
    if backbone != "wideresnet38":
        allowed.add("decoder")
    decoder = kwargs.get("decoder", "dense")
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; valid names: {', '.join(DECODERS)}")
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(
            f"backbone {backbone!r} takes no option(s) {unknown}; "
            f"valid options: {sorted(allowed) or 'none'}"
        )
    architecture = {
        "backbone": backbone,
        "num_classes": num_classes,
        "output_stride": output_stride,
        **kwargs,
    }
    if backbone == "wideresnet38":
        from anomaly_seg_ros.networks.deepwv3plus import DeepWV3Plus

        return DeepWV3Plus(num_classes, output_stride, architecture)

    from anomaly_seg_ros.networks.deeplabv3plus import DeepLabV3Plus

    if backbone == "mobilenetv2":
        from anomaly_seg_ros.networks.mobilenetv2 import MobileNetV2

        width_mult = float(kwargs.get("width_mult", 1.0))
        architecture["width_mult"] = width_mult
        features: nn.Module = MobileNetV2(output_stride, width_mult)
    else:
        from anomaly_seg_ros.networks.resnet import resnet

        features = resnet(backbone, output_stride)
    return DeepLabV3Plus(features, num_classes, output_stride, architecture, decoder)


__all__ = ["BACKBONES", "DECODERS", "create_network"]
