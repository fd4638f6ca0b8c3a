"""Output shapes, strides and the attribute contract of every network create_network builds."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from anomaly_seg_ros.networks import BACKBONES, create_network


def _expected_logit_size(backbone: str, side: int) -> int:
    if backbone == "mobilenetv2":
        # VainF's stem convolution is unpadded (3x3, stride 2), then two padded stride-2 steps.
        return math.ceil(((side - 3) // 2 + 1) / 2)
    return math.ceil(side / (2 if backbone == "wideresnet38" else 4))


# WideResNet38 and ResNet-101 are heavy on a CPU; a smaller input keeps their tests quick.
_SIDES = {"wideresnet38": (32, 48), "resnet101": (32, 48)}


@pytest.mark.parametrize("output_stride", [8, 16])
@pytest.mark.parametrize("backbone", BACKBONES)
def test_logits_come_at_decoder_resolution(backbone: str, output_stride: int) -> None:
    height, width = _SIDES.get(backbone, (64, 96))
    network = create_network(backbone, num_classes=7, output_stride=output_stride).eval()
    with torch.no_grad():
        logits = network(torch.randn(2, 3, height, width))
    assert logits.shape == (
        2,
        7,
        _expected_logit_size(backbone, height),
        _expected_logit_size(backbone, width),
    )
    assert torch.isfinite(logits).all()
    assert network.logit_stride == (2 if backbone == "wideresnet38" else 4)
    assert network.align_corners is (backbone == "wideresnet38")
    assert network.num_classes == 7


@pytest.mark.parametrize("backbone", ["resnet50", "mobilenetv2"])
def test_output_stride_sets_deep_feature_size_and_aspp_rates(backbone: str) -> None:
    for output_stride, rates in ((8, (12, 24, 36)), (16, (6, 12, 18))):
        network = create_network(backbone, output_stride=output_stride).eval()
        with torch.no_grad():
            low_level, high_level = network.backbone(torch.randn(1, 3, 64, 64))
        # MobileNet's unpadded stem gives 31, later padded stride-2 steps round up again.
        assert low_level.shape[-2:] == (16, 16)
        assert high_level.shape[-2:] == (64 // output_stride, 64 // output_stride)
        dilations = [network.classifier.aspp.convs[i][0].dilation[0] for i in (1, 2, 3)]
        assert tuple(dilations) == rates


def test_wideresnet38_output_stride_and_aspp_rates() -> None:
    for output_stride, rates in ((8, (12, 24, 36)), (16, (6, 12, 18))):
        network = create_network("wideresnet38", output_stride=output_stride).eval()
        with torch.no_grad():
            x = network.mod1(torch.randn(1, 3, 32, 32))
            x = network.mod3(network.pool3(network.mod2(network.pool2(x))))
            deep = network.mod7(network.mod6(network.mod5(network.mod4(x))))
        assert deep.shape[1:] == (4096, 32 // output_stride, 32 // output_stride)
        assert tuple(network.aspp.features[i][0].dilation[0] for i in (1, 2, 3)) == rates


@pytest.mark.parametrize("backbone", BACKBONES)
def test_architecture_rebuilds_the_same_network(backbone: str) -> None:
    network = create_network(backbone, num_classes=5, output_stride=8)
    architecture = json.loads(json.dumps(network.architecture))
    rebuilt = create_network(**architecture)
    assert architecture["backbone"] == backbone
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in network.state_dict().items()
    }


@pytest.mark.parametrize("backbone", ["resnet50", "mobilenetv2", "wideresnet38"])
def test_final_conv_is_the_last_layer(backbone: str) -> None:
    network = create_network(backbone, num_classes=6).eval()
    final_conv = network.final_conv
    assert isinstance(final_conv, nn.Conv2d)
    assert final_conv.out_channels == 6 and final_conv.kernel_size == (1, 1)
    captured: list[torch.Tensor] = []
    handle = final_conv.register_forward_hook(lambda m, i, out: captured.append(out))
    with torch.no_grad():
        logits = network(torch.randn(1, 3, 32, 32))
    handle.remove()
    assert torch.equal(captured[0], logits)


def test_separable_decoder_is_the_papers_cheaper_block() -> None:
    dense = create_network("mobilenetv2", width_mult=0.5).eval()
    separable = create_network("mobilenetv2", width_mult=0.5, decoder="separable").eval()
    block = separable.classifier.classifier
    depthwise, pointwise = block[0], block[3]
    assert depthwise.groups == depthwise.in_channels == 304 and depthwise.kernel_size == (3, 3)
    assert pointwise.kernel_size == (1, 1) and pointwise.out_channels == 256
    assert separable.final_conv is block[6] and separable.final_conv_path.endswith(".6")
    assert dense.final_conv_path == "classifier.classifier.3"

    def block_macs(network) -> int:  # per output pixel
        return sum(
            m.weight.numel() for m in network.classifier.classifier if isinstance(m, nn.Conv2d)
        )

    assert block_macs(dense) > 8 * block_macs(separable)
    rebuilt = create_network(**json.loads(json.dumps(separable.architecture)))
    assert rebuilt.architecture["decoder"] == "separable"
    assert rebuilt.state_dict().keys() == separable.state_dict().keys()
    with torch.no_grad():
        assert separable(torch.randn(1, 3, 64, 64)).shape == (1, 19, 16, 16)
    with pytest.raises(ValueError, match="dense, separable"):
        create_network("mobilenetv2", decoder="wide")
    with pytest.raises(ValueError, match="decoder"):
        create_network("wideresnet38", decoder="separable")


def test_width_mult_makes_a_small_mobilenet() -> None:
    full = create_network("mobilenetv2")
    half = create_network("mobilenetv2", width_mult=0.5)
    assert half.backbone.out_channels == 160 and half.backbone.low_level_channels == 16
    assert half.architecture["width_mult"] == 0.5
    n_full = sum(p.numel() for p in full.backbone.parameters())
    n_half = sum(p.numel() for p in half.backbone.parameters())
    assert n_half < 0.4 * n_full
    with torch.no_grad():
        assert half.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 19, 16, 16)


def test_eval_mode_is_deterministic_despite_dropout() -> None:
    network = create_network("mobilenetv2", width_mult=0.5).eval()
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(network(image), network(image))


def test_factory_rejects_bad_arguments_naming_valid_values() -> None:
    with pytest.raises(ValueError, match="resnet50, resnet101, mobilenetv2, wideresnet38"):
        create_network("resnet18")
    with pytest.raises(ValueError, match="output_stride must be 8 or 16"):
        create_network("resnet50", output_stride=32)
    with pytest.raises(ValueError, match="width_mult"):
        create_network("resnet50", width_mult=0.5)
    with pytest.raises(ValueError, match="num_classes"):
        create_network("mobilenetv2", num_classes=0)


def test_networks_share_the_base_final_conv_and_init():
    from anomaly_seg_ros.networks.base import SegmentationNetwork

    for backbone in ("mobilenetv2", "wideresnet38"):
        kwargs = {"width_mult": 0.25} if backbone == "mobilenetv2" else {}
        network = create_network(backbone, 5, 16 if backbone == "mobilenetv2" else 8, **kwargs)
        assert isinstance(network, SegmentationNetwork)
        state = network.state_dict()
        assert network.final_conv.weight is network.get_submodule(network.final_conv_path).weight
        assert f"{network.final_conv_path}.weight" in state
        assert network.final_conv.out_channels == 5
