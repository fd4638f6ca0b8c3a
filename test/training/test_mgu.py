"""Masked Gradient Update on a per-pixel linear network (exact) and on a real DeepLabv3+."""

import pytest
import torch
from torch import nn

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.networks import create_network
from training.losses import OOD_LABEL, VOID_LABEL
from training.mgu import MguConfig, masked_gradient_update, mgu_ood_batch, pick_classes


class PixelNet(nn.Module):
    """Logits = input channels (identity 1x1 conv): class k wins where channel k is largest."""

    align_corners = False

    def __init__(self) -> None:
        super().__init__()
        self.final_conv = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.final_conv.weight.copy_(torch.eye(3)[:, :, None, None])
            self.final_conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_conv(x)


def _image() -> torch.Tensor:
    image = torch.zeros(1, 3, 2, 3)
    image[0, :, 0, 0] = torch.tensor([1.0, 0.93, 0.0])  # class 0, margin 0.07: one step
    image[0, :, 0, 1] = torch.tensor([1.0, 0.52, 0.0])  # class 0, margin 0.48: five steps
    image[0, :, 0, 2] = torch.tensor([0.0, 1.0, 0.2])  # class 1: never touched
    image[0, :, 1, :] = torch.tensor([0.1, 0.0, 0.9])[:, None]  # class 2
    return image


def test_steps_until_each_pixel_leaves_the_class():
    network = PixelNet()
    image = _image()
    config = MguConfig(step_size=0.05, max_steps=50)
    perturbed, changed = masked_gradient_update(network, image, torch.tensor([0]), config)
    assert changed.tolist() == [[[True, True, False], [False, False, False]]]
    assert torch.all(network(perturbed).argmax(1)[changed] != 0)
    # each step moves channel 0 down and the others up by one step size (signed gradient),
    # and a pixel stops as soon as it has left class 0
    moved = (perturbed - image).abs()[0]
    assert moved[:, 0, 0].tolist() == pytest.approx([0.05] * 3)
    assert moved[:, 0, 1].tolist() == pytest.approx([0.25] * 3)
    assert torch.equal(perturbed[:, :, :, 2], image[:, :, :, 2])
    assert torch.equal(perturbed[:, :, 1], image[:, :, 1])


def test_step_lowers_the_class_probability_and_respects_bounds():
    network = PixelNet()
    image = _image()
    bounds = (torch.full((1, 3, 1, 1), -0.02), torch.full((1, 3, 1, 1), 0.96))
    config = MguConfig(step_size=0.05, max_steps=1)
    perturbed, _ = masked_gradient_update(network, image, torch.tensor([0]), config, bounds)
    before = torch.softmax(network(image), 1)[0, 0, 0, :2]
    after = torch.softmax(network(perturbed), 1)[0, 0, 0, :2]
    assert torch.all(after < before)
    assert perturbed.max() <= 0.96 and perturbed.min() >= -0.02


def test_ood_batch_labels_changed_pixels_and_skips_others():
    network = PixelNet()
    image = torch.cat([_image(), _image()])
    labels = torch.tensor([[[0, VOID_LABEL, 1], [2, 2, 2]]] * 2)
    config = MguConfig(step_size=0.05, max_steps=50, probability=1.0, target_class=0)
    new_image, new_labels = mgu_ood_batch(network, image, labels, config, torch.Generator())
    assert new_labels[0].tolist() == [[OOD_LABEL, VOID_LABEL, 1], [2, 2, 2]]
    assert not torch.equal(new_image[:, :, 0, :2], image[:, :, 0, :2])
    assert torch.equal(new_image[:, :, 1], image[:, :, 1])
    skip = MguConfig(probability=0.0)
    same_image, same_labels = mgu_ood_batch(network, image, labels, skip, torch.Generator())
    assert torch.equal(same_image, image) and torch.equal(same_labels, labels)


def test_random_class_choice_needs_enough_pixels():
    network = PixelNet()
    image = torch.zeros(3, 3, 8, 8)
    image[:, 2] = 1.0  # every pixel predicted as class 2
    config = MguConfig(probability=1.0, min_pixels=64)
    assert (
        pick_classes(network, image, config, torch.Generator().manual_seed(0)).tolist() == [2] * 3
    )
    config = MguConfig(probability=1.0, min_pixels=65)
    assert pick_classes(network, image, config, torch.Generator()).tolist() == [-1] * 3


def test_real_deeplab_keeps_mode_and_weights():
    torch.manual_seed(0)
    network = create_network("mobilenetv2", num_classes=4, width_mult=0.25).train()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    image = torch.randn(1, 3, 64, 64)
    before = {name: value.clone() for name, value in network.state_dict().items()}
    with torch.no_grad():
        network.eval()
        target = network(image).argmax(1).flatten().mode().values.view(1)
    network.train()
    network.backbone.eval()  # a fine-tuning mix of modes must come back as it was
    config = MguConfig(step_size=0.1, max_steps=3)
    perturbed, changed = masked_gradient_update(network, image, target, config)
    assert network.training and network.classifier.training  # restored
    assert not any(module.training for module in network.backbone.modules())
    assert all(torch.equal(before[k], v) for k, v in network.state_dict().items())  # BN stats
    assert changed.any()
    assert torch.equal(perturbed[0][:, ~changed[0]], image[0][:, ~changed[0]])


def test_config_validation():
    with pytest.raises(ConfigError):
        MguConfig(step_size=0.0)


def test_only_drawn_samples_are_changed():
    network = PixelNet()
    image = torch.cat([_image(), _image()])
    labels = torch.zeros(2, 2, 3, dtype=torch.long)
    config = MguConfig(step_size=0.05, max_steps=50, probability=0.5, target_class=0)
    for seed in range(20):  # find a draw that picks exactly one of the two samples
        classes = pick_classes(network, image, config, torch.Generator().manual_seed(seed))
        if sorted(classes.tolist()) == [-1, 0]:
            break
    generator = torch.Generator().manual_seed(seed)
    new_image, new_labels = mgu_ood_batch(network, image, labels, config, generator)
    drawn, skipped = int(classes.argmax()), int(classes.argmin())
    assert torch.equal(new_image[skipped], image[skipped])
    assert not new_labels[skipped].eq(OOD_LABEL).any()
    assert new_labels[drawn].eq(OOD_LABEL).sum() == 2
