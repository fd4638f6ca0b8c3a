"""The anomaly head: logits → per-pixel logit summary, inside the exported graph.

19×1024×2048 float logits are 159 MB per frame; the five summary maps the head emits are
what every OoD score needs, so no C×H×W tensor ever leaves the GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AnomalyHead(nn.Module):
    """Wraps a segmentation network; outputs the logit summary at the input size.

    Outputs, each (B, H, W): ``label`` uint8 argmax, ``max_logit``, ``min_logit``,
    ``logsumexp`` and softmax ``entropy`` (nats), float32. The summary is computed in
    float32 even when the network body runs in float16, so that fp16 engines keep
    logsumexp and entropy accurate.

    :param network: returns (B, C, h, w) logits; has ``align_corners``.
    :param body_dtype: dtype the network body runs in (float32 or float16).
    """

    def __init__(self, network: nn.Module, body_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.network = network
        self.body_dtype = body_dtype
        self.align_corners = bool(getattr(network, "align_corners", False))

    def upsampled_logits(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalized image → (B, C, H, W) float32 logits."""
        logits = self.network(image.to(self.body_dtype)).float()
        return F.interpolate(
            logits, size=image.shape[-2:], mode="bilinear", align_corners=self.align_corners
        )

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return summarize(self.upsampled_logits(image))


def summarize(logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(B, C, H, W) float32 logits → the head's outputs, in ``OUTPUT_NAMES`` order.

    :return: ``label`` (B, H, W) uint8 argmax, ``max_logit``, ``min_logit``,
        ``logsumexp``, softmax ``entropy`` (nats), each (B, H, W) float32.
    """
    # Channels last: ONNX Runtime's reductions over the innermost axis are about a third
    # cheaper than over the strided channel axis of (B, C, H, W).
    logits = logits.permute(0, 2, 3, 1)
    max_logit, label = logits.max(dim=-1)
    min_logit = logits.min(dim=-1).values
    # One exp pass gives logsumexp and the softmax: p = e / Σe with e = exp(l − max),
    # and H = −Σ p log p = logsumexp − Σ p·l (no log of tiny p).
    shifted = torch.exp(logits - max_logit.unsqueeze(-1))
    total = shifted.sum(dim=-1)
    logsumexp = max_logit + torch.log(total)
    entropy = logsumexp - (shifted * logits).sum(dim=-1) / total
    return label.to(torch.uint8), max_logit, min_logit, logsumexp, entropy
