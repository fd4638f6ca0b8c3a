"""What limits anomaly fine-tuning on the synthetic world (issue 12, item 1).

Starting from ``models/demo/demo_base.pt`` with every BatchNorm in eval mode (statistics
frozen), trains, for each training-sample seed, on backbone features cached once:

* what trains: the final 1×1 only / the classification block after feature fusion
  (VainF ``classifier.classifier``: 3×3 conv + BN + ReLU + 1×1) / the whole decoder and
  ASPP (``classifier``), each with its own L_id-only (γ = 0) control on the same data;
* base quality: the 1×1 and the block recipe on two other bases, a stronger one (the
  decoder trained further with L_id only) and a weak one (the block re-initialised and
  trained from scratch with L_id only);
* schedule length, mixing probability, proxy bank size and diversity, and style alignment
  on a bank with a real style gap (``style_gap_bank.py``), for the 1×1 and for the block.

Backbone features are cached on disk (``--cache``), so a later run skips that part.

Evaluates mIoU on ID val frames, Max Logit / Energy AP, AUROC, FPR95 on a validation
anomaly set of another world seed (selection) and on the test-anomaly family (report).
Records are appended to ``<out>.jsonl`` as they come, so a cut-off loses one run::

    nice -n 10 python research/limits_study.py
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anomaly_seg_ros.datasets.anomaly import AnomalyDataset
from anomaly_seg_ros.datasets.cityscapes import CityscapesDataset
from anomaly_seg_ros.evaluation.factory import create_pixel_evaluator
from anomaly_seg_ros.evaluation.segmentation_metrics import SegmentationEvaluator
from anomaly_seg_ros.networks.base import SegmentationNetwork
from anomaly_seg_ros.networks.importers import import_checkpoint
from anomaly_seg_ros.pipeline.scores import compute_score
from research.feature_cache import logit_summary, sample_order
from research.synthetic_table import training_samples
from training.anomalymix import AnomalyMix, AnomalyMixConfig
from training.coco_subset import ObjectBank
from training.finetune_data import IndexedFrames, OodTrainingSet, SampleConfig
from training.finetune_setup import poly_schedule
from training.losses import OOD_LABEL, AnomalyLossConfig, anomaly_loss, downsample_labels
from training.seg_eval import metrics_from_confusion
from training.swap_decoder import TrunkFeatures, frame_batches, fused_input, trunk_features

LOGGER = logging.getLogger("research.limits_study")
SCORES = ("max_logit", "energy")


def disk_cached(
    folder: Path | None, key: tuple[Any, ...], build: Callable[[], TrunkFeatures]
) -> TrunkFeatures:
    """``build()``'s TrunkFeatures, kept in ``folder`` under a hash of ``key`` (None: no disk)."""
    if folder is None:
        return build()
    import hashlib

    path = folder / (hashlib.sha1(repr(key).encode()).hexdigest()[:16] + ".pt")
    if path.is_file():
        LOGGER.info("features from %s (%s)", path, key)
        return TrunkFeatures(*torch.load(path))
    data = build()
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save((data.low, data.high, data.labels), partial)
    partial.replace(path)
    return data


def forward(
    head: Any,  # DeepLabHeadV3Plus: its parts are reached by name
    part: str,
    low: torch.Tensor | None,
    high: torch.Tensor | None,
    penultimate: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits of the head; ``penultimate`` (1×1 input) short-cuts the frozen parts."""
    if penultimate is not None:  # part "final" with the frozen parts run once before
        return head.classifier[-1](penultimate)
    assert low is not None and high is not None, "features or a penultimate are needed"
    if part == "final":
        with torch.no_grad():
            penultimate = head.classifier[:-1](fused_input(head, low, high))
        return head.classifier[-1](penultimate)
    if part == "block":
        with torch.no_grad():
            x = fused_input(head, low, high)
        return head.classifier(x)
    return head(low, high)


def trainable(head: Any, part: str) -> list[nn.Parameter]:
    module = {"final": head.classifier[-1], "block": head.classifier, "decoder": head}[part]
    return list(module.parameters())


@torch.no_grad()
def penultimates(head: Any, data: TrunkFeatures) -> torch.Tensor:
    chunks = []
    for start in range(0, len(data), 16):
        sl = slice(start, start + 16)
        chunks.append(
            head.classifier[:-1](
                fused_input(head, data.low[sl].float(), data.high[sl].float())
            ).half()
        )
    return torch.cat(chunks)


def train(
    base_head: Any,
    part: str,
    data: TrunkFeatures,
    loss: AnomalyLossConfig,
    steps: int,
    lr: float,
    batch: int,
    seed: int,
) -> tuple[nn.Module, float]:
    """Fine-tune a copy of the head's ``part`` (BN in eval mode); return it and seconds."""
    head = copy.deepcopy(base_head).float().eval()  # eval: BN statistics stay frozen
    for parameter in head.parameters():
        parameter.requires_grad_(False)
    params = trainable(head, part)
    for parameter in params:
        parameter.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, poly_schedule(steps, 0.9))
    size = (int(data.low.shape[-2]), int(data.low.shape[-1]))
    small = torch.cat([
        downsample_labels(data.labels[s : s + 32].long(), size, loss.label_downsampling)
        for s in range(0, len(data), 32)
    ])  # fmt: skip
    pen = penultimates(base_head.float(), data) if part == "final" else None
    started = time.perf_counter()
    for indices in sample_order(len(data), batch, steps, seed):
        index = torch.from_numpy(indices)
        if pen is not None:
            logits = forward(head, part, None, None, pen[index].float())
        else:
            logits = forward(head, part, data.low[index].float(), data.high[index].float())
        total, _ = anomaly_loss(logits, data.labels[index].long(), loss, False, small[index])
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(total)
        optimizer.step()
        schedule.step()
    return head.eval(), time.perf_counter() - started


@torch.no_grad()
def evaluate(
    head: Any,  # DeepLabHeadV3Plus: its parts are reached by name
    names: tuple[str, ...],
    sets: dict[str, TrunkFeatures],
    pens: dict[str, torch.Tensor] | None = None,
) -> dict[str, float]:
    """Metrics per set; ``pens`` (base penultimates per set) when only the 1×1 changed."""
    record: dict[str, float] = {}
    for set_name, data in sets.items():
        if set_name == "id_val":
            evaluator = SegmentationEvaluator(names)
        else:
            evaluators = {name: create_pixel_evaluator("exact") for name in SCORES}
        for index in range(len(data)):
            label = data.labels[index].numpy()
            if pens is not None:
                logits = head.classifier[-1](pens[set_name][index : index + 1].float())
            else:
                logits = head(
                    data.low[index : index + 1].float(), data.high[index : index + 1].float()
                )
            logits = F.interpolate(logits, size=label.shape, mode="bilinear")
            summary = logit_summary(logits)
            if set_name == "id_val":
                evaluator.process(summary.label, label)
            else:
                for name, ev in evaluators.items():
                    ev.process(compute_score(name, summary), label)
        if set_name == "id_val":
            metrics = metrics_from_confusion(evaluator.confusion, names)
            record["miou"] = metrics.miou_present
        else:
            for name, ev in evaluators.items():
                result = ev.evaluate()
                record[f"{set_name}/{name}/ap"] = result.average_precision
                record[f"{set_name}/{name}/auroc"] = result.auroc
                record[f"{set_name}/{name}/fpr95"] = result.fpr_at_95_tpr
    return record


def run_seed(
    seed: int,
    args: argparse.Namespace,
    network: nn.Module,
    head: Any,  # DeepLabHeadV3Plus: its parts are reached by name
    names: tuple[str, ...],
    meta: Any,
    train_frames: IndexedFrames,
    bank: ObjectBank,
    sets: dict[str, TrunkFeatures],
    base_pens: dict[str, torch.Tensor],
    log: Callable[[dict[str, Any]], None],
) -> None:
    """Every variant for one draw of training samples, cheapest-to-most-informative first;
    training caches (mixing probability, bank subset) are built when first needed."""
    gap_bank = ObjectBank(args.gap_bank) if Path(args.gap_bank).exists() else None
    picks = np.random.default_rng(seed).permutation(len(train_frames))[: args.samples]
    sample = SampleConfig(crop_size=tuple(args.crop), scale_range=(0.75, 1.25))
    caches: dict[tuple[float, str, str], TrunkFeatures] = {}

    def data(
        probability: float = 0.25, bank_name: str = "full", style: str = "fda"
    ) -> TrunkFeatures:
        key = (probability, bank_name, style)
        if key not in caches:
            if bank_name != "gap":
                subset = bank_subset(bank, bank_name, seed)
            elif gap_bank is not None:
                subset = gap_bank
            else:
                raise FileNotFoundError(f"style-gap bank {args.gap_bank} not found")
            mix = AnomalyMix(subset, AnomalyMixConfig(probability=probability, style=style))
            dataset = OodTrainingSet(train_frames, mix, sample, meta.mean, meta.std, seed)
            caches[key] = disk_cached(
                args.cache, ("train", args.model, args.data_root, args.samples, args.crop,
                             args.batch, seed, key),
                lambda: trunk_features(network, training_samples(dataset, picks, args.batch)),
            )  # fmt: skip
            share = float((caches[key].labels == OOD_LABEL).float().mean())
            LOGGER.info("seed %d %s: %.3f %% OoD pixels", seed, key, 100 * share)
        return caches[key]

    topk = AnomalyLossConfig(kind="topk_ovr", k=5, scale=2.0, gamma=0.05)
    control = AnomalyLossConfig(kind="topk_ovr", k=5, scale=2.0, gamma=0.0)
    deep_lr = args.lr * args.steps / args.deep_steps  # same summed learning rate
    steps, lr, batch = args.steps, args.lr, args.batch
    block = ("block", args.deep_steps, deep_lr, args.deep_batch)
    final = ("final", steps, lr, batch)
    # Data factors run for the 1x1 and for the block alike.
    factors: list[tuple[str, dict[str, Any]]] = [
        ("p 0.5", {"probability": 0.5}),
        ("bank 1/10 (87 objects)", {"bank_name": "tenth"}),
        ("bank one category (capsule)", {"bank_name": "capsule"}),
        ("style-gap bank, no alignment", {"bank_name": "gap", "style": "none"}),
        ("style-gap bank, FDA", {"bank_name": "gap"}),
        ("style-gap bank, Reinhard", {"bank_name": "gap", "style": "reinhard"}),
    ]
    plan = [
        # name, (part, steps, lr, batch), data settings, loss, base
        ("1x1 (today)", final, {}, topk),
        ("1x1 control: L_id only", final, {}, control),
        ("block (3x3+BN+ReLU+1x1)", block, {}, topk),
        ("block control: L_id only", block, {}, control),
        ("decoder + ASPP", ("decoder", *block[1:]), {}, topk),
        ("decoder + ASPP control: L_id only", ("decoder", *block[1:]), {}, control),
        ("1x1, 3x schedule", ("final", steps * 3, lr, batch), {}, topk),
        ("1x1, 9x schedule", ("final", steps * 9, lr, batch), {}, topk),
        ("1x1, 27x schedule", ("final", steps * 27, lr, batch), {}, topk),
        *[(f"1x1, {name}", final, settings, topk) for name, settings in factors],
        ("block, 1/3 schedule", ("block", args.deep_steps // 3, deep_lr, args.deep_batch), {},
         topk),
        ("block, 3x schedule", ("block", args.deep_steps * 3, deep_lr / 3, args.deep_batch),
         {}, topk),
        ("block, p 0.1", block, {"probability": 0.1}, topk),
        *[(f"block, {name}", block, settings, topk) for name, settings in factors],
    ]  # fmt: skip
    only = set(filter(None, args.only.split(";")))
    for name, (part, n_steps, n_lr, n_batch), data_key, loss in plan:
        if only and name not in only:
            continue
        trained, seconds = train(head, part, data(**data_key), loss, n_steps, n_lr, n_batch, seed)
        pens = base_pens if part == "final" else None
        log({"variant": name, "seed": seed, "seconds": seconds, "steps": n_steps, "lr": n_lr,
             "batch": n_batch, **evaluate(trained, names, sets, pens)})  # fmt: skip
    if only and not only & {"weak base", "stronger base", "separable base"}:
        return
    # Base quality: the recipe on bases of other mIoU, same data, same schedules.
    parts = (("1x1", final), ("block", block))
    bases: list[tuple[str, Any, tuple[tuple[str, tuple[str, int, float, int]], ...]]] = []
    if not only or "stronger base" in only:
        # the decoder trained further with L_id only (the decoder control above)
        stronger, _ = train(head, "decoder", data(), control, args.deep_steps, deep_lr / 3,
                            args.deep_batch, seed)  # fmt: skip
        bases.append(("stronger base (decoder +30 steps L_id only)", stronger, parts))
    if not only or "weak base" in only:
        # the classification block re-initialised and trained from scratch with L_id only
        weak = copy.deepcopy(head)
        SegmentationNetwork.init_weights(weak.classifier)
        weak, _ = train(weak, "block", data(), control, args.weak_steps, deep_lr,
                        args.deep_batch, seed)  # fmt: skip
        bases.append((f"weak base (block re-trained from scratch, {args.weak_steps} steps)",
                      weak, parts))  # fmt: skip
    if args.separable and (not only or "separable base" in only):
        # The shipped demo network's decoder (issue 16): the same frozen trunk, so the same
        # cached trunk features, with a depthwise-separable classification block.
        separable = import_checkpoint(args.separable)[0].float().eval().classifier
        bases.append(
            (
                "separable base (decoder swapped)",
                separable,
                (("1x1, 9x schedule", ("final", steps * 9, lr, batch)), ("block", block)),
            )
        )
    for base_name, base, base_parts in bases:
        log({"variant": f"{base_name}, no fine-tuning", "seed": seed,
             **evaluate(base, names, sets)})  # fmt: skip
        for part_name, (part, n_steps, n_lr, n_batch) in base_parts:
            tuned, seconds = train(base, part, data(), topk, n_steps, n_lr, n_batch, seed)
            log({"variant": f"{base_name} + {part_name}", "seed": seed, "seconds": seconds,
                 "steps": n_steps, "lr": n_lr, **evaluate(tuned, names, sets)})  # fmt: skip


def bank_subset(bank: ObjectBank, name: str, seed: int) -> ObjectBank:
    """The full bank, a random tenth of it, or one category of it (a shallow copy)."""
    if name == "full":
        return bank
    import copy

    subset = copy.copy(bank)
    subset._cache = {}  # keyed by position in entries
    if name == "tenth":
        order = np.random.default_rng(seed).permutation(len(bank.entries))
        subset.entries = [bank.entries[i] for i in sorted(order[: len(order) // 10])]
    else:
        subset.entries = [e for e in bank.entries if e["category"] == name]
    return subset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/demo/demo_base.pt")
    parser.add_argument("--data-root", default="output/synthetic/cityscapes")
    parser.add_argument("--test-root", default="output/synthetic/anomaly")
    parser.add_argument("--select-root", default="output/synthetic_s1/anomaly")
    parser.add_argument("--bank", default="output/ood_objects")
    parser.add_argument(
        "--gap-bank", default="output/ood_objects_gap",
        help="the bank restyled by research/style_gap_bank.py",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("research/results/limits_study"))
    parser.add_argument("--samples", type=int, default=160)
    parser.add_argument("--crop", type=int, nargs=2, default=(192, 384))
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--deep-steps", type=int, default=30, help="steps for block/decoder")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--deep-batch", type=int, default=4)
    parser.add_argument(
        "--separable", default="",
        help="a decoder-swapped checkpoint of --model (training/swap_decoder.py) as a base",
    )  # fmt: skip
    parser.add_argument("--weak-steps", type=int, default=60, help="steps for the weak base")
    parser.add_argument("--val-frames", type=int, default=20)
    parser.add_argument("--select-frames", type=int, default=40)
    parser.add_argument("--test-frames", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--cache", type=Path, default=Path("output/limits_cache"),
        help="folder for cached backbone features (reused by later runs)",
    )  # fmt: skip
    parser.add_argument("--only", default="", help="variant names separated by ;")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    network, meta = import_checkpoint(args.model)
    network = network.float().eval()
    head, names = network.classifier, tuple(meta.class_names)
    mean, std = meta.mean, meta.std
    train_frames = IndexedFrames(CityscapesDataset(args.data_root, "train"))
    bank = ObjectBank(args.bank)
    LOGGER.info("caching evaluation features")
    sets = {
        "id_val": disk_cached(args.cache, ("id_val", args.model, args.data_root, args.val_frames),
            lambda: trunk_features(network, frame_batches(IndexedFrames(
                CityscapesDataset(args.data_root, "val")), mean, std, args.val_frames))),
        "select": disk_cached(args.cache, ("select", args.model, args.select_root,
            args.select_frames), lambda: trunk_features(network, frame_batches(
                AnomalyDataset(Path(args.select_root)), mean, std, args.select_frames))),
        "test": disk_cached(args.cache, ("test", args.model, args.test_root, args.test_frames),
            lambda: trunk_features(network, frame_batches(
                AnomalyDataset(Path(args.test_root)), mean, std, args.test_frames))),
    }  # fmt: skip
    out = args.out.with_suffix(".jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)

    def log(record: dict[str, Any]) -> None:
        with out.open("a") as stream:
            stream.write(json.dumps(record) + "\n")
        LOGGER.info("%s", record)

    base_pens = {name: penultimates(head, data) for name, data in sets.items()}
    if not args.no_baseline:
        log({"variant": "baseline (demo_base, no fine-tuning)", "seed": None,
             **evaluate(head, names, sets)})  # fmt: skip
    for seed in args.seeds:
        run_seed(seed, args, network, head, names, meta, train_frames, bank, sets, base_pens, log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
