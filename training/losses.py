"""Fine-tuning losses: ID cross-entropy plus an OoD term on pasted / synthetic-unknown pixels.

Label convention (at any resolution): train IDs ``0..C-1`` are in-distribution, ``254``
(:data:`OOD_LABEL`) marks OoD pixels, ``255`` (:data:`VOID_LABEL`) is ignored everywhere.

The paper's OoD term (Zhang et al. 2023) is a one-vs-rest loss on the K largest logits:

    L_ood = 1 / (K |N_ood|) * sum_{i in N_ood} sum_{k in topK(i)} -log sigmoid(-s * logit_ik)

and ``-log sigmoid(-x) = softplus(x)``, which is what the code computes (numerically stable).
It is evaluated on the logits *before* the final bilinear upsampling; the label map is brought
to the logit resolution by :func:`downsample_labels` (majority vote per logit cell by default).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from anomaly_seg_ros.errors import ConfigError

OOD_LABEL = 254
VOID_LABEL = 255


def downsample_labels(
    labels: torch.Tensor, size: tuple[int, int], method: str = "mode"
) -> torch.Tensor:
    """Bring a label map to the logit resolution.

    ``"mode"`` gives every logit cell the label that covers most of its footprint (area
    pooling of a one-hot map, ties to the lower train ID, then OoD, then void); an object
    therefore keeps its area at low resolution instead of depending on which corner pixel
    nearest-neighbour sampling hits. ``"nearest"`` is PyTorch's nearest interpolation.

    :param labels: (N, H, W) integer labels (train IDs, 254 OoD, 255 void).
    :param size: (h, w) of the logits.
    :param method: ``"mode"`` or ``"nearest"``.
    :return: (N, h, w) int64 labels.
    :raises ConfigError: unknown method.
    """
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels.long()
    if method == "nearest":
        return F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()
    if method != "mode":
        raise ConfigError(f"label downsampling {method!r} unknown; use 'mode' or 'nearest'")
    labels = labels.long()
    values = torch.unique(labels)
    # One channel per label value present: memory stays small whatever C is.
    one_hot = (labels[:, None] == values[None, :, None, None]).float()
    fractions = F.adaptive_avg_pool2d(one_hot, size)
    return values[fractions.argmax(dim=1)]


def _ood_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(P, C) logits of the OoD pixels; ``logits`` (N, C, h, w), ``labels`` (N, h, w)."""
    mask = labels == OOD_LABEL
    return logits.permute(0, 2, 3, 1)[mask]


def _zero(logits: torch.Tensor) -> torch.Tensor:
    # Keeps the graph connected (DDP expects every trainable parameter to get a gradient).
    return logits.sum() * 0.0


def id_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over ID pixels; OoD (254) and void (255) pixels are excluded.

    :param logits: (N, C, H, W) at the label resolution.
    :param labels: (N, H, W) integer labels.
    :return: scalar mean over ID pixels (0 with a graph if there are none).
    """
    target = labels.long().clone()
    target[target == OOD_LABEL] = VOID_LABEL
    if not bool((target != VOID_LABEL).any()):
        return _zero(logits)
    return F.cross_entropy(logits.float(), target, ignore_index=VOID_LABEL)


def topk_ovr_loss(
    logits: torch.Tensor, labels: torch.Tensor, k: int = 5, scale: float = 2.0
) -> torch.Tensor:
    """Top-K one-vs-rest OoD loss: push the K largest logits of every OoD pixel down.

    :param logits: (N, C, h, w); ``labels``: (N, h, w) at the same resolution.
    :param k: number of largest logits per pixel (clamped to C).
    :param scale: the paper's ``s``.
    :return: scalar ``1/(K|N_ood|) sum softplus(s * logit)`` (0 with a graph if no OoD pixel).
    """
    selected = _ood_logits(logits.float(), labels)
    if selected.shape[0] == 0:
        return _zero(logits)
    top = selected.topk(min(k, selected.shape[1]), dim=1).values
    return F.softplus(scale * top).mean()


def ovr_all_loss(logits: torch.Tensor, labels: torch.Tensor, scale: float = 2.0) -> torch.Tensor:
    """One-vs-rest over all C classes (the top-K loss with K = C)."""
    return topk_ovr_loss(logits, labels, k=logits.shape[1], scale=scale)


def uniform_ce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy to the uniform label on OoD pixels (Meta-OoD's entropy maximisation).

    ``-1/C sum_c log p_c``, averaged over OoD pixels; equals KL(U || p) + log C.
    """
    selected = _ood_logits(logits.float(), labels)
    if selected.shape[0] == 0:
        return _zero(logits)
    return -F.log_softmax(selected, dim=1).mean(dim=1).mean()


def kl_uniform_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """KL(p || U) = log C - H(p) on OoD pixels: entropy maximisation in the other KL direction.

    (KL(U || p) differs from :func:`uniform_ce_loss` only by the constant log C, so this is
    the direction that gives a different gradient.)
    """
    selected = _ood_logits(logits.float(), labels)
    if selected.shape[0] == 0:
        return _zero(logits)
    log_p = F.log_softmax(selected, dim=1)
    return (log_p.exp() * log_p).sum(dim=1).mean() + math.log(selected.shape[1])


def energy_hinge_loss(
    logits: torch.Tensor, labels: torch.Tensor, m_in: float = -12.0, m_out: float = -6.0
) -> torch.Tensor:
    """PEBAL's squared energy hinge: ID energy below ``m_in``, OoD energy above ``m_out``.

    ``E = -logsumexp(logits)``; loss = ½ (mean_ID relu(E - m_in)² + mean_OoD relu(m_out - E)²).
    PEBAL's smoothness and sparsity regularisers on the energy map are not included.
    """
    energy = -torch.logsumexp(logits.float(), dim=1)
    id_mask = (labels != OOD_LABEL) & (labels != VOID_LABEL)
    ood_mask = labels == OOD_LABEL
    loss = _zero(logits)
    if bool(id_mask.any()):
        loss = loss + 0.5 * F.relu(energy[id_mask] - m_in).pow(2).mean()
    if bool(ood_mask.any()):
        loss = loss + 0.5 * F.relu(m_out - energy[ood_mask]).pow(2).mean()
    return loss


def entropy_ratio_loss(
    logits: torch.Tensor, labels: torch.Tensor, eps: float = 1e-3
) -> torch.Tensor:
    """Ratio of the mean normalised entropy on ID pixels to that on OoD pixels.

    Our reading of the synthetic-unknown paper's entropy-ratio term (its exact formula was not
    at hand): minimising ``(H_id + eps) / (H_ood + eps)``, entropies divided by log C, lowers ID
    entropy and raises OoD entropy together, and is scale-free in the number of pixels.
    """
    log_p = F.log_softmax(logits.float(), dim=1)
    entropy = -(log_p.exp() * log_p).sum(dim=1) / math.log(logits.shape[1])
    id_mask = (labels != OOD_LABEL) & (labels != VOID_LABEL)
    ood_mask = labels == OOD_LABEL
    if not bool(ood_mask.any()) or not bool(id_mask.any()):
        return _zero(logits)
    return (entropy[id_mask].mean() + eps) / (entropy[ood_mask].mean() + eps)


#: OoD loss names accepted by :class:`AnomalyLossConfig` (``kind``).
OOD_LOSS_KINDS = ("topk_ovr", "ovr_all", "uniform_ce", "kl_uniform", "energy", "entropy_ratio")


@dataclass(frozen=True)
class AnomalyLossConfig:
    """Settings of ``L = L_id + gamma * L_ood``.

    :param kind: one of :data:`OOD_LOSS_KINDS`.
    :param k: K of the top-K one-vs-rest loss (paper: 5).
    :param scale: s of the one-vs-rest losses (paper: 2).
    :param gamma: weight of the OoD term (paper: 0.05 WRN38, 0.01 R101).
    :param m_in: energy hinge margin for ID pixels (PEBAL: -12).
    :param m_out: energy hinge margin for OoD pixels (PEBAL: -6).
    :param label_downsampling: ``"mode"`` or ``"nearest"`` (see :func:`downsample_labels`).
    """

    kind: str = "topk_ovr"
    k: int = 5
    scale: float = 2.0
    gamma: float = 0.05
    m_in: float = -12.0
    m_out: float = -6.0
    label_downsampling: str = "mode"

    def __post_init__(self) -> None:
        if self.kind not in OOD_LOSS_KINDS:
            raise ConfigError(f"OoD loss {self.kind!r} unknown; choose one of {OOD_LOSS_KINDS}")
        if self.k < 1 or self.scale <= 0 or self.gamma < 0:
            raise ConfigError("need k >= 1, scale > 0 and gamma >= 0 for the anomaly loss")
        if self.label_downsampling not in ("mode", "nearest"):
            raise ConfigError("label_downsampling must be 'mode' or 'nearest'")

    def ood_loss_fn(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The OoD term as a function ``(logits, labels) -> scalar`` at one resolution."""
        table: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
            "topk_ovr": lambda x, y: topk_ovr_loss(x, y, k=self.k, scale=self.scale),
            "ovr_all": lambda x, y: ovr_all_loss(x, y, scale=self.scale),
            "uniform_ce": uniform_ce_loss,
            "kl_uniform": kl_uniform_loss,
            "energy": lambda x, y: energy_hinge_loss(x, y, m_in=self.m_in, m_out=self.m_out),
            "entropy_ratio": entropy_ratio_loss,
        }
        return table[self.kind]


def anomaly_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    config: AnomalyLossConfig,
    align_corners: bool = False,
    small_labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``L_id + gamma * L_ood`` from the network's logits before the final upsampling.

    L_id is the usual cross-entropy on the logits bilinearly upsampled to the label size;
    L_ood is evaluated at the logit resolution on labels downsampled to it.

    :param logits: (N, C, h, w) logits before the final upsampling.
    :param labels: (N, H, W) integer labels at the image resolution.
    :param config: loss settings.
    :param align_corners: the network's bilinear convention.
    :param small_labels: ``labels`` already at the logit resolution (saves the downsampling
        when the same labels are used many times).
    :return: (total loss, {"id": float, "ood": float}) for logging.
    """
    full = F.interpolate(
        logits, size=labels.shape[-2:], mode="bilinear", align_corners=align_corners
    )
    loss_id = id_cross_entropy(full, labels)
    if small_labels is None:
        size = (int(logits.shape[-2]), int(logits.shape[-1]))
        small_labels = downsample_labels(labels, size, config.label_downsampling)
    loss_ood = config.ood_loss_fn()(logits, small_labels)
    total = loss_id + config.gamma * loss_ood
    return total, {"id": float(loss_id.detach()), "ood": float(loss_ood.detach())}
