"""Masked Gradient Update (MGU): synthetic-unknown OoD pixels without any COCO data.

From "Anomaly-Aware Semantic Segmentation by Leveraging Synthetic-Unknown Data" (Lu et
al.): pick a class c; the input pixels the network predicts as c are stepped along the
negative gradient of c's softmax probability, each pixel only while it is still predicted
as c. The pixels that were changed now lie just past the boundary of class c in the
network's eyes; they become OoD pixels (label 254) for fine-tuning, next to or instead of
AnomalyMix.

Images are the network's normalized input, ``(N, 3, H, W)`` float; masks are ``(N, H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from anomaly_seg_ros.errors import ConfigError
from training.losses import OOD_LABEL, VOID_LABEL


@dataclass(frozen=True)
class MguConfig:
    """MGU settings.

    :param step_size: signed-gradient step per iteration, in normalized input units
        (0.05 ≈ 3 grey levels with ImageNet std).
    :param max_steps: iterations at most; pixels still predicted as c after them are
        changed too and count as OoD.
    :param probability: share of the samples of a batch that MGU is applied to.
    :param target_class: the class to move away from; None picks, per sample, a random
        class among those predicted on at least ``min_pixels`` pixels.
    :param min_pixels: smallest predicted area (pixels) for a class to be picked.
    """

    step_size: float = 0.05
    max_steps: int = 10
    probability: float = 0.1
    target_class: int | None = None
    min_pixels: int = 256

    def __post_init__(self) -> None:
        if self.step_size <= 0 or self.max_steps < 1 or not 0 <= self.probability <= 1:
            raise ConfigError("MGU needs step_size > 0, max_steps >= 1, probability in [0, 1]")


def _eval_modes(network: nn.Module) -> dict[nn.Module, bool]:
    """Put ``network`` in eval mode; return every module's previous mode (fine-tuning mixes
    frozen eval-mode parts with trained parts, so one ``train(flag)`` cannot restore it)."""
    modes = {module: module.training for module in network.modules()}
    network.eval()
    return modes


def _restore_modes(modes: dict[nn.Module, bool]) -> None:
    for module, training in modes.items():
        module.training = training


def _upsampled_logits(network: nn.Module, image: torch.Tensor) -> torch.Tensor:
    logits = network(image)
    return F.interpolate(
        logits,
        size=image.shape[-2:],
        mode="bilinear",
        align_corners=bool(getattr(network, "align_corners", False)),
    )


def masked_gradient_update(
    network: nn.Module,
    image: torch.Tensor,
    target_class: torch.Tensor,
    config: MguConfig,
    bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step the pixels predicted as ``target_class`` until they are no longer predicted so.

    :param network: segmentation network (the package contract: low-res logits out).
    :param image: (N, 3, H, W) normalized input.
    :param target_class: (N,) int64 class per sample (-1: leave the sample alone).
    :param config: step size and iteration limit.
    :param bounds: per-channel (low, high) of valid normalized values, each (1, 3, 1, 1);
        steps are clipped to them so the result is still a valid image.
    :return: ``(perturbed image (detached), changed (N, H, W) bool)``.
    """
    modes = _eval_modes(network)  # dropout and BN statistics must not change while probing
    x = image.detach().clone()
    classes = target_class.view(-1, 1, 1)
    with torch.no_grad():
        active = _upsampled_logits(network, x).argmax(1) == classes
    changed = active.clone()
    try:
        for _ in range(config.max_steps):
            if not bool(active.any()):
                break
            x.requires_grad_(True)
            probability = torch.softmax(_upsampled_logits(network, x), dim=1)
            chosen = probability.gather(
                1, classes.clamp(min=0)[:, None].expand(-1, 1, *x.shape[-2:])
            )
            (gradient,) = torch.autograd.grad((chosen[:, 0] * active).sum(), x)
            with torch.no_grad():
                x = x - config.step_size * gradient.sign() * active[:, None]
                if bounds is not None:
                    x = torch.maximum(torch.minimum(x, bounds[1]), bounds[0])
                active &= _upsampled_logits(network, x).argmax(1) == classes
    finally:
        _restore_modes(modes)
    return x.detach(), changed


def pick_classes(
    network: nn.Module, image: torch.Tensor, config: MguConfig, generator: torch.Generator
) -> torch.Tensor:
    """(N,) target class per sample: ``config.target_class`` or a random predicted class;
    -1 for samples MGU skips (drawn with ``1 - probability``, or nothing large enough)."""
    chosen = torch.full((image.shape[0],), -1, dtype=torch.long)
    drawn = [
        i
        for i in range(image.shape[0])
        if torch.rand((), generator=generator) < config.probability
    ]
    if not drawn:
        return chosen.to(image.device)
    if config.target_class is not None:
        chosen[drawn] = config.target_class
        return chosen.to(image.device)
    modes = _eval_modes(network)
    with torch.no_grad():  # only the drawn samples go through the network
        prediction = network(image[drawn]).argmax(1).cpu()
    _restore_modes(modes)
    # areas at the logit resolution, scaled back to input pixels
    scale = image.shape[-1] * image.shape[-2] / prediction[0].numel()
    for row, index in enumerate(drawn):
        areas = torch.bincount(prediction[row].flatten()) * scale
        candidates = torch.nonzero(areas >= config.min_pixels).flatten()
        if candidates.numel():
            pick = torch.randint(candidates.numel(), (), generator=generator)
            chosen[index] = candidates[pick]
    return chosen.to(image.device)


def mgu_ood_batch(
    network: nn.Module,
    image: torch.Tensor,
    labels: torch.Tensor,
    config: MguConfig,
    generator: torch.Generator,
    bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply MGU to a training batch: changed pixels become OoD (254).

    Only the samples drawn for MGU go through the (costly) gradient steps.

    :param labels: (N, H, W) int labels; void (255) pixels stay void.
    :return: (image, labels), new tensors; samples MGU skipped are unchanged.
    """
    classes = pick_classes(network, image, config, generator)
    chosen = torch.nonzero(classes >= 0).flatten()
    if chosen.numel() == 0:
        return image, labels
    perturbed, changed = masked_gradient_update(
        network, image[chosen], classes[chosen], config, bounds
    )
    image, labels = image.clone(), labels.clone()
    image[chosen] = perturbed
    chosen_labels = labels[chosen]
    chosen_labels[changed & (chosen_labels != VOID_LABEL)] = OOD_LABEL
    labels[chosen] = chosen_labels
    return image, labels
