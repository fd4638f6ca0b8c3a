"""Fine-tuning losses against direct per-pixel formulas."""

import math

import pytest
import torch

from anomaly_seg_ros.errors import ConfigError
from training.losses import (
    OOD_LABEL,
    VOID_LABEL,
    AnomalyLossConfig,
    anomaly_loss,
    downsample_labels,
    energy_hinge_loss,
    entropy_ratio_loss,
    id_cross_entropy,
    kl_uniform_loss,
    ovr_all_loss,
    topk_ovr_loss,
    uniform_ce_loss,
)


def _pixels(logits: torch.Tensor, labels: torch.Tensor, value: int) -> list[torch.Tensor]:
    return [
        logits[n, :, y, x]
        for n in range(labels.shape[0])
        for y in range(labels.shape[1])
        for x in range(labels.shape[2])
        if int(labels[n, y, x]) == value
    ]


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 7, 4, 5, generator=generator) * 3
    labels = torch.randint(0, 7, (2, 4, 5), generator=generator)
    labels[0, 1, 1:4] = OOD_LABEL
    labels[1, 3, 0] = OOD_LABEL
    labels[1, 0, :2] = VOID_LABEL
    return logits, labels


@pytest.mark.parametrize("k", [1, 3, 5])
def test_topk_ovr_matches_direct_sum(batch, k):
    logits, labels = batch
    total = 0.0
    pixels = _pixels(logits, labels, OOD_LABEL)
    for vector in pixels:
        top = sorted(vector.tolist(), reverse=True)[:k]
        total += sum(-math.log(1.0 / (1.0 + math.exp(2.0 * value))) for value in top)
    expected = total / (k * len(pixels))
    assert topk_ovr_loss(logits, labels, k=k, scale=2.0).item() == pytest.approx(expected, 1e-5)


def test_topk_gradient_only_on_top_logits_and_positive(batch):
    logits, labels = batch
    logits = logits.clone().requires_grad_(True)
    topk_ovr_loss(logits, labels, k=3).backward()
    grad = logits.grad
    for n, y, x in (labels == OOD_LABEL).nonzero().tolist():
        top = set(logits[n, :, y, x].topk(3).indices.tolist())
        for c in range(7):
            if c in top:
                # descent lowers the top logits: d/dlogit softplus(s*logit) = s*sigmoid(...) > 0
                assert grad[n, c, y, x] > 0
            else:
                assert grad[n, c, y, x] == 0
    assert torch.all(grad.permute(0, 2, 3, 1)[labels != OOD_LABEL] == 0)


def test_ovr_all_equals_topk_with_k_c(batch):
    logits, labels = batch
    assert ovr_all_loss(logits, labels).item() == pytest.approx(
        topk_ovr_loss(logits, labels, k=7).item()
    )
    assert topk_ovr_loss(logits, labels, k=50).item() == pytest.approx(
        ovr_all_loss(logits, labels).item()
    )


def test_uniform_ce_and_kl_uniform(batch):
    logits, labels = batch
    pixels = _pixels(logits, labels, OOD_LABEL)
    ce, kl = 0.0, 0.0
    for vector in pixels:
        p = torch.softmax(vector.double(), 0)
        ce += float(-(p.log()).mean())
        kl += float((p * (p * 7).log()).sum())
    assert uniform_ce_loss(logits, labels).item() == pytest.approx(ce / len(pixels), 1e-5)
    assert kl_uniform_loss(logits, labels).item() == pytest.approx(kl / len(pixels), 1e-4)
    uniform = torch.zeros_like(logits)
    assert kl_uniform_loss(uniform, labels).item() == pytest.approx(0.0, abs=1e-6)
    assert uniform_ce_loss(uniform, labels).item() == pytest.approx(math.log(7), 1e-6)


def test_energy_hinge_matches_formula(batch):
    logits, labels = batch
    m_in, m_out = -2.0, 1.0
    energy = lambda v: -float(torch.logsumexp(v.double(), 0))  # noqa: E731
    id_terms = [
        max(energy(v) - m_in, 0) ** 2 for value in range(7) for v in _pixels(logits, labels, value)
    ]
    ood_terms = [max(m_out - energy(v), 0) ** 2 for v in _pixels(logits, labels, OOD_LABEL)]
    expected = 0.5 * sum(id_terms) / len(id_terms) + 0.5 * sum(ood_terms) / len(ood_terms)
    got = energy_hinge_loss(logits, labels, m_in=m_in, m_out=m_out).item()
    assert got == pytest.approx(expected, 1e-5)


def test_entropy_ratio_prefers_confident_id_and_flat_ood(batch):
    _, labels = batch
    ood = (labels == OOD_LABEL)[:, None].expand(-1, 7, -1, -1)
    confident = torch.full((2, 7, 4, 5), -5.0)
    confident[:, 0] = 5.0
    good = torch.where(ood, torch.zeros_like(confident), confident)  # flat on OoD only
    swapped = torch.where(ood, confident, torch.zeros_like(confident))  # flat on ID only
    assert entropy_ratio_loss(good, labels).item() < 0.01
    assert entropy_ratio_loss(swapped, labels).item() > 10.0


def test_id_cross_entropy_excludes_ood_and_void(batch):
    logits, labels = batch
    terms = [
        -float(torch.log_softmax(v.double(), 0)[value])
        for value in range(7)
        for v in _pixels(logits, labels, value)
    ]
    assert id_cross_entropy(logits, labels).item() == pytest.approx(sum(terms) / len(terms), 1e-5)


def test_no_ood_pixels_gives_connected_zero():
    logits = torch.randn(1, 4, 3, 3, requires_grad=True)
    labels = torch.zeros(1, 3, 3, dtype=torch.long)
    loss = topk_ovr_loss(logits, labels)
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None


def test_downsample_mode_keeps_majority_and_nearest_takes_corner():
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[0, 1:4, 1:4] = OOD_LABEL  # 9 of the 16 pixels of the top-left 4x4 cell
    labels[0, 4:8, 4:8] = 3
    labels[0, 4, 4] = VOID_LABEL
    mode = downsample_labels(labels, (2, 2), "mode")
    assert mode.tolist() == [[[OOD_LABEL, 0], [0, 3]]]
    nearest = downsample_labels(labels, (2, 2), "nearest")
    assert nearest.tolist() == [[[0, 0], [0, VOID_LABEL]]]
    with pytest.raises(ConfigError):
        downsample_labels(labels, (2, 2), "bilinear")


def test_anomaly_loss_combines_terms_at_two_resolutions():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 5, 4, 4, generator=generator)
    labels = torch.randint(0, 5, (1, 16, 16), generator=generator)
    labels[0, :8, :8] = OOD_LABEL
    config = AnomalyLossConfig(kind="topk_ovr", k=2, gamma=0.5)
    total, parts = anomaly_loss(logits, labels, config)
    small = downsample_labels(labels, (4, 4))
    assert int((small == OOD_LABEL).sum()) == 4
    assert parts["ood"] == pytest.approx(topk_ovr_loss(logits, small, k=2).item(), 1e-6)
    assert total.item() == pytest.approx(parts["id"] + 0.5 * parts["ood"], 1e-5)
    again, _ = anomaly_loss(logits, labels, config, small_labels=small)
    assert again.item() == pytest.approx(total.item())


def test_config_rejects_unknown_kind():
    with pytest.raises(ConfigError, match="topk_ovr"):
        AnomalyLossConfig(kind="focal")
    with pytest.raises(ConfigError):
        AnomalyLossConfig(k=0)
