"""Give a trained DeepLabv3+ another decoder layout, re-training only the classification block.

    python -m training.swap_decoder --base models/demo/demo_base.pt --decoder separable \\
        --out output/demo_separable/base.pt

The backbone, ASPP and low-level projection keep the base's weights and run frozen (eval
mode); the classification block (VainF ``classifier.classifier``: the decoder's 3×3
convolution, BN, ReLU and the final 1×1) is rebuilt in the requested layout (e.g. the
DeepLabv3+ paper's depthwise-separable 3×3, ``decoder="separable"``) from random weights
and trained with class-balanced cross-entropy, its BatchNorms in train mode. The trunk is
frozen, so its features of every training frame are computed once (float16, in memory:
about 0.45 MB per 256×512 frame) and each step trains on random crops of them: exact for
un-flipped, unscaled crops, which is the augmentation this step gives up.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from anomaly_seg_ros.datasets.cityscapes import CityscapesDataset
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.networks import DECODERS, create_network
from anomaly_seg_ros.networks.checkpoint import load_checkpoint, save_checkpoint
from training.augment import IGNORE_INDEX
from training.distributed import DistributedContext
from training.finetune_data import FrameSource, IndexedFrames
from training.finetune_setup import poly_schedule
from training.seg_dataset import class_weights, to_tensor
from training.seg_eval import evaluate_network

LOGGER = logging.getLogger(__name__)
#: The block this step rebuilds (state_dict prefix).
BLOCK = "classifier.classifier."
#: Peak learning rate of the swap (AdamW, poly decay; the block starts from random weights).
SWAP_LR = 2e-3


class TrunkFeatures:
    """Backbone features (low-level, deep) float16 and labels uint8 of N samples."""

    def __init__(self, low: torch.Tensor, high: torch.Tensor, labels: torch.Tensor) -> None:
        self.low, self.high, self.labels = low, high, labels

    def __len__(self) -> int:
        return self.low.shape[0]


def frame_batches(
    frames: FrameSource,
    mean: Sequence[float],
    std: Sequence[float],
    count: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(image, labels)`` batches of one whole frame each, the first ``count`` frames."""
    for index in range(len(frames) if count is None else min(count, len(frames))):
        image, label = frames.read(index)
        yield to_tensor(image, mean, std)[None], torch.from_numpy(label[None].copy())


@torch.no_grad()
def trunk_features(
    network: nn.Module, batches: Iterable[Any], progress: bool = False
) -> TrunkFeatures:
    """The frozen backbone's features of every ``(images, labels)`` batch, kept in memory."""
    lows, highs, labels = [], [], []
    for images, batch_labels in tqdm(batches, desc="features", disable=not progress):
        low, high = network.get_submodule("backbone")(images)
        lows.append(low.half())
        highs.append(high.half())
        labels.append(batch_labels.to(torch.uint8))
    return TrunkFeatures(torch.cat(lows), torch.cat(highs), torch.cat(labels))


def fused_input(head: nn.Module, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """What the classification block sees: projected low-level ⊕ upsampled ASPP output."""
    low = head.get_submodule("project")(low)
    aspp = head.get_submodule("aspp")
    high = F.interpolate(aspp(high), size=low.shape[-2:], mode="bilinear")
    return torch.cat([low, high], dim=1)


def val_miou(network: nn.Module, frames: CityscapesDataset, count: int) -> float:
    """mIoU over the classes present in the first ``count`` val frames, on this CPU (the
    trainer's own validation, ImageNet normalisation like every network trained here)."""
    context = DistributedContext(0, 1, 0, torch.device("cpu"))
    return evaluate_network(network, frames, context, count).miou_present


def swap_decoder(
    base: Path,
    decoder: str,
    data_root: Path,
    out: Path,
    steps: int = 3000,
    lr: float = SWAP_LR,
    batch: int = 8,
    crop_cells: tuple[int, int] = (8, 16),
    val_frames: int = 100,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``out``: the base with its classification block re-trained in ``decoder`` layout.

    :param base: package checkpoint of a DeepLabv3+ (``create_network`` layout).
    :param decoder: one of :data:`~anomaly_seg_ros.networks.DECODERS`.
    :param data_root: Cityscapes-layout training data (``train`` and ``val`` splits).
    :param out: destination checkpoint (written atomically).
    :param steps: optimisation steps (AdamW, poly decay).
    :param lr: peak learning rate.
    :param batch: frames per step.
    :param crop_cells: crop size in cells of the deep features (stride 16).
    :param val_frames: val frames for the mIoU before and after.
    :param seed: crop and frame order, initial weights.
    :param progress: tqdm bars.
    :return: what happened (mIoU before and after, minutes), also stored in the checkpoint.
    :raises ConfigError: an unknown decoder or a base without a DeepLabv3+ decoder.
    """
    if decoder not in DECODERS:
        raise ConfigError(f"unknown decoder {decoder!r}; valid names: {', '.join(DECODERS)}")
    network, meta = load_checkpoint(base)
    if not hasattr(network, "classifier") or not hasattr(network.classifier, "aspp"):
        raise ConfigError(f"{base} is a {meta.architecture} network, not a DeepLabv3+")
    torch.manual_seed(seed)
    swapped = create_network(**{**meta.architecture, "decoder": decoder})
    trunk = {k: v for k, v in network.state_dict().items() if not k.startswith(BLOCK)}
    missing, unexpected = swapped.load_state_dict(trunk, strict=False)
    if unexpected or not all(key.startswith(BLOCK) for key in missing):
        raise ConfigError(f"{base}: keys {unexpected or missing} do not fit {decoder} layout")
    swapped.eval()
    block = swapped.get_submodule("classifier.classifier")
    for name, parameter in swapped.named_parameters():
        parameter.requires_grad_(name.startswith(BLOCK))
    train_frames = CityscapesDataset(data_root, "train")
    val = CityscapesDataset(data_root, "val")
    before = val_miou(network.float(), val, val_frames)
    started = time.perf_counter()
    cached = trunk_features(
        swapped, frame_batches(IndexedFrames(train_frames), meta.mean, meta.std), progress
    )
    low, high, labels = cached.low, cached.high, cached.labels
    weights = class_weights(train_frames, len(meta.class_names))
    optimizer = torch.optim.AdamW(block.parameters(), lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, poly_schedule(steps, 0.9))
    rng = np.random.default_rng(seed)
    cells_y, cells_x = crop_cells
    ratio_low = low.shape[-1] // high.shape[-1]  # 4: stride 16 → stride 4
    ratio_label = labels.shape[-1] // high.shape[-1]
    for _ in tqdm(range(steps), desc=f"{decoder} block", disable=not progress):
        index = torch.from_numpy(rng.integers(0, len(labels), batch))
        y = int(rng.integers(0, high.shape[-2] - cells_y + 1))
        x = int(rng.integers(0, high.shape[-1] - cells_x + 1))
        with torch.no_grad():
            fused = fused_input(
                swapped.get_submodule("classifier"), low[index].float(), high[index].float()
            )
        rows = slice(y * ratio_low, (y + cells_y) * ratio_low)
        cols = slice(x * ratio_low, (x + cells_x) * ratio_low)
        fused = fused[..., rows, cols]
        rows = slice(y * ratio_label, (y + cells_y) * ratio_label)
        cols = slice(x * ratio_label, (x + cells_x) * ratio_label)
        crop = labels[index, rows, cols].long()
        block.train()
        logits = F.interpolate(block(fused), size=crop.shape[-2:], mode="bilinear")
        loss = F.cross_entropy(logits, crop, weight=weights, ignore_index=IGNORE_INDEX)
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        optimizer.step()
        schedule.step()
    minutes = (time.perf_counter() - started) / 60.0
    after = val_miou(swapped, val, val_frames)
    record = {
        "base": str(base),
        "decoder": decoder,
        "steps": steps,
        "lr": lr,
        "batch": batch,
        "crop_cells": list(crop_cells),
        "train_frames": len(train_frames),
        "minutes": round(minutes, 1),
        "val_frames": min(val_frames, len(val)),
        "miou_before": round(before, 4),
        "miou_after": round(after, 4),
    }
    LOGGER.info("decoder %s: val mIoU %.3f → %.3f in %.1f min", decoder, before, after, minutes)
    save_checkpoint(
        out,
        swapped.eval(),
        meta.class_names,
        mean=meta.mean,
        std=meta.std,
        **{**meta.meta, "decoder_swap": record},
    )
    return record


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="package checkpoint")
    parser.add_argument("--decoder", choices=DECODERS, default="separable")
    parser.add_argument("--data-root", type=Path, default=Path("output/synthetic/cityscapes"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--lr", type=float, default=SWAP_LR)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        swap_decoder(
            args.base, args.decoder, args.data_root, args.out, args.steps, args.lr,
            args.batch, seed=args.seed,
        )  # fmt: skip
    except ConfigError as error:
        parser.exit(2, f"error: {error}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
