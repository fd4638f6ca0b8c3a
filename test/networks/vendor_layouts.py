"""State-dict layouts of the public checkpoints, written from their documented structure.

These generators do not use the package's networks: they spell out, key by key, what
VainF DeepLabV3Plus-Pytorch and NVIDIA DeepWV3Plus save, so the tests can check that
our module names and shapes match the real files.
"""

from __future__ import annotations

import torch

Layout = dict[str, tuple[int, ...]]


def _bn(layout: Layout, prefix: str, channels: int) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        layout[f"{prefix}.{name}"] = (channels,)
    layout[f"{prefix}.num_batches_tracked"] = ()


def _conv(layout: Layout, key: str, out_ch: int, in_ch: int, kernel: int) -> None:
    layout[key] = (out_ch, in_ch, kernel, kernel)


def torchvision_resnet(prefix: str, blocks: tuple[int, int, int, int]) -> Layout:
    """torchvision Bottleneck ResNet without fc: ``conv1, bn1, layer1..4``."""
    layout: Layout = {}
    _conv(layout, f"{prefix}conv1.weight", 64, 3, 7)
    _bn(layout, f"{prefix}bn1", 64)
    inplanes = 64
    for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
        for index in range(count):
            block = f"{prefix}layer{stage}.{index}"
            _conv(layout, f"{block}.conv1.weight", planes, inplanes, 1)
            _bn(layout, f"{block}.bn1", planes)
            _conv(layout, f"{block}.conv2.weight", planes, planes, 3)
            _bn(layout, f"{block}.bn2", planes)
            _conv(layout, f"{block}.conv3.weight", planes * 4, planes, 1)
            _bn(layout, f"{block}.bn3", planes * 4)
            if index == 0:
                _conv(layout, f"{block}.downsample.0.weight", planes * 4, inplanes, 1)
                _bn(layout, f"{block}.downsample.1", planes * 4)
            inplanes = planes * 4
    return layout


def vainf_mobilenetv2(prefix: str) -> Layout:
    """VainF MobileNetV2 (width 1): ``features[0:4]`` low level, ``[4:18]`` high level."""
    layout: Layout = {}
    low = f"{prefix}low_level_features"
    _conv(layout, f"{low}.0.0.weight", 32, 3, 3)
    _bn(layout, f"{low}.0.1", 32)
    settings = [(1, 16, 1), (6, 24, 2), (6, 32, 3), (6, 64, 4), (6, 96, 3), (6, 160, 3)]
    settings.append((6, 320, 1))
    index, inp = 1, 32
    for expand, out, repeats in settings:
        for _ in range(repeats):
            part = low if index < 4 else f"{prefix}high_level_features"
            block = f"{part}.{index}.conv"
            hidden = inp * expand
            sub = 0
            if expand != 1:
                _conv(layout, f"{block}.0.0.weight", hidden, inp, 1)
                _bn(layout, f"{block}.0.1", hidden)
                sub = 1
            layout[f"{block}.{sub}.0.weight"] = (hidden, 1, 3, 3)
            _bn(layout, f"{block}.{sub}.1", hidden)
            _conv(layout, f"{block}.{sub + 1}.weight", out, hidden, 1)
            _bn(layout, f"{block}.{sub + 2}", out)
            index, inp = index + 1, out
    return layout


def vainf_head(in_ch: int, low_ch: int, num_classes: int) -> Layout:
    """VainF DeepLabHeadV3Plus under ``classifier.``."""
    layout: Layout = {}
    head = "classifier"
    _conv(layout, f"{head}.project.0.weight", 48, low_ch, 1)
    _bn(layout, f"{head}.project.1", 48)
    _conv(layout, f"{head}.aspp.convs.0.0.weight", 256, in_ch, 1)
    _bn(layout, f"{head}.aspp.convs.0.1", 256)
    for branch in (1, 2, 3):
        _conv(layout, f"{head}.aspp.convs.{branch}.0.weight", 256, in_ch, 3)
        _bn(layout, f"{head}.aspp.convs.{branch}.1", 256)
    _conv(layout, f"{head}.aspp.convs.4.1.weight", 256, in_ch, 1)
    _bn(layout, f"{head}.aspp.convs.4.2", 256)
    _conv(layout, f"{head}.aspp.project.0.weight", 256, 1280, 1)
    _bn(layout, f"{head}.aspp.project.1", 256)
    _conv(layout, f"{head}.classifier.0.weight", 256, 304, 3)
    _bn(layout, f"{head}.classifier.1", 256)
    _conv(layout, f"{head}.classifier.3.weight", num_classes, 256, 1)
    layout[f"{head}.classifier.3.bias"] = (num_classes,)
    return layout


def vainf_layout(backbone: str, num_classes: int = 19) -> Layout:
    """Keys and shapes of VainF's ``model_state`` for one of its backbones."""
    if backbone == "mobilenetv2":
        return {**vainf_mobilenetv2("backbone."), **vainf_head(320, 24, num_classes)}
    blocks = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}[backbone]
    return {**torchvision_resnet("backbone.", blocks), **vainf_head(2048, 256, num_classes)}


def nvidia_wrn38_layout(prefix: str = "module.", num_classes: int = 19) -> Layout:
    """Keys and shapes of NVIDIA DeepWV3Plus (WideResNet38-A2), BN wrapped as ``.0``."""
    layout: Layout = {}
    _conv(layout, f"{prefix}mod1.conv1.weight", 64, 3, 3)
    structure = (3, 3, 6, 3, 1, 1)
    channels = ((128, 128), (256, 256), (512, 512), (512, 1024), (512, 1024, 2048))
    channels += ((1024, 2048, 4096),)
    inp = 64
    for mod, (count, chans) in enumerate(zip(structure, channels), start=2):
        for index in range(1, count + 1):
            block = f"{prefix}mod{mod}.block{index}"
            _bn(layout, f"{block}.bn1.0", inp)
            kernels = (3, 3) if len(chans) == 2 else (1, 3, 1)
            previous = inp
            for conv, (out, kernel) in enumerate(zip(chans, kernels), start=1):
                if conv > 1:
                    _bn(layout, f"{block}.convs.bn{conv}.0", previous)
                _conv(layout, f"{block}.convs.conv{conv}.weight", out, previous, kernel)
                previous = out
            if inp != chans[-1] or (mod == 4 and index == 1):
                _conv(layout, f"{block}.proj_conv.weight", chans[-1], inp, 1)
            inp = chans[-1]
    for branch in range(4):
        kernel = 1 if branch == 0 else 3
        _conv(layout, f"{prefix}aspp.features.{branch}.0.weight", 256, 4096, kernel)
        _bn(layout, f"{prefix}aspp.features.{branch}.1", 256)
    _conv(layout, f"{prefix}aspp.img_conv.0.weight", 256, 4096, 1)
    _bn(layout, f"{prefix}aspp.img_conv.1", 256)
    _conv(layout, f"{prefix}bot_fine.weight", 48, 128, 1)
    _conv(layout, f"{prefix}bot_aspp.weight", 256, 1280, 1)
    _conv(layout, f"{prefix}final.0.weight", 256, 304, 3)
    _bn(layout, f"{prefix}final.1", 256)
    _conv(layout, f"{prefix}final.3.weight", 256, 256, 3)
    _bn(layout, f"{prefix}final.4", 256)
    _conv(layout, f"{prefix}final.6.weight", num_classes, 256, 1)
    return layout


def constant_state_dict(layout: Layout) -> dict[str, torch.Tensor]:
    """One distinct constant per key, stored as a broadcast view (a tiny file).

    ``torch.save`` writes a view's storage, here one number, so a 137 M-parameter
    layout costs kilobytes; ``load_state_dict`` copies the broadcast values.
    """
    state: dict[str, torch.Tensor] = {}
    for index, (key, shape) in enumerate(layout.items()):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(index, dtype=torch.long)
        else:
            value = 1.0 + (index % 97) / 97 if key.endswith("running_var") else index / 1000
            state[key] = torch.full((1,), value).expand(shape)
    return state


def random_state_dict(layout: Layout, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights (positive running variances) for a forward-pass comparison."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, shape in layout.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(100, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        elif len(shape) == 1 and key.endswith("weight"):  # BatchNorm scale near 1
            state[key] = 1.0 + 0.1 * torch.randn(shape, generator=generator)
        else:
            fan_in = max(1, int(torch.tensor(shape[1:]).prod())) if len(shape) > 1 else 1
            scale = (2.0 / fan_in) ** 0.5 if len(shape) > 1 else 0.1
            state[key] = torch.randn(shape, generator=generator) * scale
    return state
