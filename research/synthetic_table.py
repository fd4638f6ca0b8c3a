"""The synthetic-world table: OoD losses and OoD sources for head-only fine-tuning.

Starting from the bundled demo model before anomaly fine-tuning (``demo_base.pt``),
fine-tunes the final classifier with (a) top-K one-vs-rest + style-aligned AnomalyMix,
(b) the same without style alignment, (c) one-vs-rest over all classes, (d) uniform-label
CE, (e) PEBAL's energy hinge, (f) top-K + MGU instead of AnomalyMix, and K in {1, 3, 5};
reports AP / AUROC / FPR95 of Max Logit, Energy and Max-Min Logit on the test-anomaly set
and mIoU before / after::

    nohup python research/synthetic_table.py \
        > research/results/synthetic_table.log 2>&1 &

Sized for a shared 2-core CPU (see ``--help``): a fixed set of augmented samples whose
penultimate features are computed once (:mod:`research.feature_cache`).
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

# training/ is not an installed package: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anomaly_seg_ros.datasets.anomaly import AnomalyDataset
from anomaly_seg_ros.datasets.cityscapes import CityscapesDataset
from anomaly_seg_ros.networks.checkpoint import CheckpointMeta
from anomaly_seg_ros.networks.importers import import_checkpoint
from research.feature_cache import (
    FeatureSet,
    cache_batches,
    cache_frames,
    evaluate_head,
    sample_order,
)
from research.table_report import write_report
from training.anomalymix import AnomalyMix, AnomalyMixConfig
from training.coco_subset import ObjectBank
from training.finetune_data import IndexedFrames, OodTrainingSet, SampleConfig, input_bounds
from training.finetune_setup import final_conv, poly_schedule
from training.losses import OOD_LABEL, AnomalyLossConfig, anomaly_loss, downsample_labels
from training.mgu import MguConfig, mgu_ood_batch

LOGGER = logging.getLogger("research.synthetic_table")
SCORES = ("max_logit", "energy", "max_min_logit")


def variants(
    style: str, gamma: float, m_in: float, m_out: float
) -> list[tuple[str, str, AnomalyLossConfig]]:
    """(row name, OoD data set, loss) of every row of the table."""
    topk = AnomalyLossConfig(kind="topk_ovr", k=5, scale=2.0, gamma=gamma)
    return [
        (f"(a) top-5 OvR + AnomalyMix ({style})", "mix_style", topk),
        ("(b) top-5 OvR + AnomalyMix (no style)", "mix_none", topk),
        ("(c) OvR all classes + AnomalyMix", "mix_style", replace(topk, kind="ovr_all")),
        ("(d) uniform CE + AnomalyMix", "mix_style", replace(topk, kind="uniform_ce")),
        (
            "(e) energy hinge + AnomalyMix",
            "mix_style",
            replace(topk, kind="energy", m_in=m_in, m_out=m_out),
        ),
        ("(f) top-5 OvR + MGU", "mgu", topk),
        ("K=1 OvR + AnomalyMix", "mix_style", replace(topk, k=1)),
        ("K=3 OvR + AnomalyMix", "mix_style", replace(topk, k=3)),
        ("control: L_id only (γ = 0), same data", "mix_style", replace(topk, gamma=0.0)),
    ]


def training_samples(
    dataset: OodTrainingSet, picks: np.ndarray, batch: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of the picked samples (augmentation drawn from (seed, 0, index))."""
    for start in range(0, len(picks), batch):
        items = [dataset[int(index)] for index in picks[start : start + batch]]
        yield (
            torch.stack([image for image, _ in items]),
            torch.stack([label for _, label in items]),
        )


def mgu_samples(
    network: nn.Module,
    dataset: OodTrainingSet,
    picks: np.ndarray,
    batch: int,
    config: MguConfig,
    bounds: tuple[torch.Tensor, torch.Tensor],
    seed: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches with MGU applied by the base network (changed pixels labelled 254)."""
    generator = torch.Generator().manual_seed(seed)
    for images, labels in training_samples(dataset, picks, batch):
        yield mgu_ood_batch(network, images, labels, config, generator, bounds)


def small_labels(data: FeatureSet, method: str) -> torch.Tensor:
    """Labels at the feature resolution, computed once (in chunks: the one-hot is large)."""
    size = (int(data.features.shape[-2]), int(data.features.shape[-1]))
    chunks = [
        downsample_labels(data.labels[start : start + 32].long(), size, method)
        for start in range(0, len(data), 32)
    ]
    return torch.cat(chunks)


def train_head(
    base_conv: nn.Module,
    data: FeatureSet,
    loss: AnomalyLossConfig,
    args: argparse.Namespace,
    align_corners: bool,
) -> tuple[nn.Module, float]:
    """Fine-tune a copy of the final 1×1 conv on cached features; return it and the time."""
    conv = copy.deepcopy(base_conv).float().train()
    for parameter in conv.parameters():
        parameter.requires_grad_(True)
    optimizer = torch.optim.AdamW(conv.parameters(), args.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, poly_schedule(args.steps, 0.9))
    started = time.perf_counter()
    small = small_labels(data, loss.label_downsampling)
    for indices in sample_order(len(data), args.batch, args.steps, args.seed):
        index = torch.from_numpy(indices)
        logits = conv(data.features[index].float())
        labels = data.labels[index].long()
        total, _ = anomaly_loss(logits, labels, loss, align_corners, small[index])
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(total)
        optimizer.step()
        schedule.step()
    return conv.eval(), time.perf_counter() - started


def energy_margins(
    network: nn.Module, data: FeatureSet, align_corners: bool
) -> tuple[float, float]:
    """PEBAL's margins (-12 / -6) fit WRN38 logits; for another model, put m_in at the
    median energy of its ID training pixels and keep PEBAL's gap of 6."""
    with torch.no_grad():
        energies = []
        for start in range(0, min(len(data), 64), 8):
            logits = final_conv(network)(data.features[start : start + 8].float())
            labels = data.labels[start : start + 8].long()
            small = torch.nn.functional.interpolate(
                labels[:, None].float(), size=logits.shape[-2:], mode="nearest"
            )[:, 0]
            energy = -torch.logsumexp(logits, dim=1)
            energies.append(energy[(small < OOD_LABEL)])
    m_in = float(torch.cat(energies).median())
    return m_in, m_in + 6.0


def measure_epoch(
    network: nn.Module,
    meta: CheckpointMeta,
    args: argparse.Namespace,
    train_frames: IndexedFrames,
    bank: ObjectBank,
) -> dict[str, float]:
    """Time a few real ``finetune()`` steps (full network forward) and extrapolate."""
    from training.finetune import finetune
    from training.finetune_config import FinetuneConfig

    config = FinetuneConfig(
        epochs=1, batch_size=args.batch, steps_per_epoch=args.timing_steps,
        sample=SampleConfig(crop_size=tuple(args.crop)), workers=1, export_size=None,
        mix=AnomalyMixConfig(probability=0.1, style=args.style), progress=False,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:  # its checkpoint is not kept
        result = finetune(copy.deepcopy(network), meta, config, train_frames, scratch, bank)
    per_step = result.history[-1]["seconds"] / args.timing_steps
    steps = len(train_frames) // args.batch
    return {
        "seconds_per_step": per_step,
        "steps_per_epoch": steps,
        "seconds_per_epoch": per_step * steps,
    }


class Experiment:
    """The base network, the frames and the cached evaluation features shared by all runs."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.network, self.meta = import_checkpoint(args.model)
        self.network.eval()
        self.align = bool(self.network.align_corners)
        self.names = tuple(self.meta.class_names)
        self.train = IndexedFrames(CityscapesDataset(args.data_root, "train"))
        self.bank = ObjectBank(args.bank)
        mean, std = self.meta.mean, self.meta.std
        val = IndexedFrames(CityscapesDataset(args.data_root, "val"))
        anomaly = AnomalyDataset(Path(args.anomaly_root))
        LOGGER.info("caching evaluation features")
        self.eval_val = cache_frames(self.network, val, mean, std, args.val_frames)
        self.eval_anomaly = cache_frames(self.network, anomaly, mean, std, args.anomaly_frames)
        self.margins: tuple[float, float] | None = None

    def evaluate(self, head: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, float]:
        return evaluate_head(
            head, self.align, self.names, self.eval_val, self.eval_anomaly, SCORES
        )

    def build(self, source: str, seed: int) -> FeatureSet:
        """Training features of one OoD source; the same frames and draws for every source."""
        args, network, (mean, std) = self.args, self.network, (self.meta.mean, self.meta.std)
        picks = np.random.default_rng(seed).permutation(len(self.train))[: args.samples]
        sample = SampleConfig(crop_size=tuple(args.crop), scale_range=(0.75, 1.25))
        if source == "mgu":
            dataset = OodTrainingSet(self.train, None, sample, mean, std, seed)
            config = MguConfig(step_size=0.1, max_steps=4, probability=args.mix_probability)
            batches = mgu_samples(
                network, dataset, picks, args.batch, config, input_bounds(mean, std), seed
            )
            return cache_batches(network, batches)
        style = args.style if source == "mix_style" else "none"
        mix = AnomalyMix(
            self.bank, AnomalyMixConfig(probability=args.mix_probability, style=style)
        )
        dataset = OodTrainingSet(self.train, mix, sample, mean, std, seed)
        return cache_batches(network, training_samples(dataset, picks, args.batch))

    def run_seed(self, seed: int, rows: dict[str, dict[str, Any]]) -> None:
        """All variants for one draw of training samples; records appended to ``rows``."""
        args = replace_seed(self.args, seed)
        for source in args.sources.split(","):
            LOGGER.info("seed %d: caching training features: %s", seed, source)
            data = self.build(source, seed)
            share = float((data.labels == OOD_LABEL).float().mean())
            LOGGER.info("%s: %d samples, %.3f %% OoD pixels", source, len(data), 100 * share)
            if self.margins is None:
                self.margins = energy_margins(self.network, data, self.align)
                LOGGER.info("energy margins m_in %.2f m_out %.2f", *self.margins)
            for name, row_source, loss in variants(args.style, args.gamma, *self.margins):
                if row_source != source:
                    continue
                conv, seconds = train_head(final_conv(self.network), data, loss, args, self.align)
                record = {**self.evaluate(conv), "ood_pixel_share": share, "seed": seed}
                row = rows.setdefault(name, {"source": source, "loss": loss, "records": []})
                row["records"].append(record)
                row.setdefault("seconds", []).append(seconds)
                LOGGER.info("%s (%.0f s): %s", name, seconds, record)
            del data


def replace_seed(args: argparse.Namespace, seed: int) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "seed": seed})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/demo/demo_base.pt", help="base checkpoint")
    parser.add_argument("--data-root", default="output/synthetic/cityscapes")
    parser.add_argument("--anomaly-root", default="output/synthetic/anomaly")
    parser.add_argument("--bank", default="output/ood_objects")
    parser.add_argument("--out", type=Path, default=Path("research/results"))
    parser.add_argument("--samples", type=int, default=640, help="cached training crops")
    parser.add_argument("--crop", type=int, nargs=2, default=(192, 384))
    parser.add_argument("--mix-probability", type=float, default=0.25)
    parser.add_argument("--style", default="fda")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--lr", type=float, default=2.5e-4,
        help="default: the paper's sum of learning rates (20 epochs of Cityscapes at 1e-5, "
        "poly decay) spread over --steps",
    )  # fmt: skip
    parser.add_argument("--gamma", type=float, default=0.05)
    parser.add_argument("--val-frames", type=int, default=100)
    parser.add_argument("--anomaly-frames", type=int, default=200)
    parser.add_argument("--timing-steps", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--sources", default="mix_style,mix_none,mgu", help="OoD data to build")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = time.perf_counter()
    torch.manual_seed(args.seeds[0])
    experiment = Experiment(args)
    baseline = experiment.evaluate(final_conv(experiment.network))
    LOGGER.info("baseline: %s", baseline)
    rows: dict[str, dict[str, Any]] = {
        "baseline (no fine-tuning)": {"source": "-", "loss": None, "records": [baseline]}
    }
    for seed in args.seeds:
        experiment.run_seed(seed, rows)
    timing = {
        "seconds_per_step": float("nan"),
        "steps_per_epoch": 0,
        "seconds_per_epoch": float("nan"),
    }
    if args.timing_steps > 0:
        LOGGER.info("timing finetune() on the full network")
        timing = measure_epoch(
            experiment.network,
            experiment.meta,
            replace_seed(args, 0),
            experiment.train,
            experiment.bank,
        )
    elapsed = time.perf_counter() - started
    write_report(args.out / "synthetic_table", rows, vars(args), timing, elapsed)
    LOGGER.info("done in %.0f s", elapsed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
