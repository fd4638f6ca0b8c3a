"""Build the bundled demo model in ``models/demo/`` with one command.

    python -m demo.model.make

1. generates the synthetic world (``output/synthetic``; skipped when already there with
   the same settings), 2. trains ``training/configs/demo.yaml`` (``output/demo_run``),
3. rounds the weights to fp16 and saves them as ``demo_base.pt``, 4. anomaly fine-tunes
the head (``training/configs/demo_finetune.yaml``: top-5 one-vs-rest + AnomalyMix with
the world's proxy object bank, ``output/demo_finetune``), 5. rounds the fine-tuned
weights to fp16 and saves them as ``demo.pt``, 6. calibrates SML on training frames,
7. exports ``demo.onnx`` + sidecar with the anomaly head, 8. evaluates the ONNX on the val
frames through the Detector and times ONNX Runtime, 9. writes the model card.
``--skip-train`` reuses a finished run (e.g. after ``python -m training.train --resume``);
``--no-finetune`` ships the base network (steps 4–5 skipped); ``--base`` starts from an
existing base checkpoint (e.g. the shipped ``demo_base.pt``) instead of steps 2–3, keeping
the training figures of its model card (``demo.json`` provenance). ``--decoder separable``
(the default since issue 16) re-trains the base's classification block in the DeepLabv3+
paper's depthwise-separable layout on the frozen trunk (``training/swap_decoder.py``)
between steps 3 and 4; ``demo_base.pt`` stays the dense base it starts from.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from anomaly_seg_ros.datasets.cityscapes import CityscapesDataset
from anomaly_seg_ros.errors import AnomalySegError
from anomaly_seg_ros.model.sml_stats import save_sml_stats
from anomaly_seg_ros.networks import DECODERS
from anomaly_seg_ros.networks.checkpoint import load_checkpoint, save_checkpoint
from demo.model.card import evaluate_onnx, machine_description, ort_latency, write_model_card
from demo.synthetic.generate import generate
from demo.synthetic.ood_bank import BANK_IMAGE_SIZE
from training.calibrate_sml import calibrate
from training.config import load_config
from training.train import train

LOGGER = logging.getLogger("demo.model.make")
#: The synthetic world the demo model is trained on.
WORLD = {
    "train": 3000,
    "val": 300,
    "anomaly": 200,
    "ood_bank": 600,
    "seed": 0,
    "height": 256,
    "width": 512,
}
COMMAND = "python -m demo.model.make"
FINETUNE_CONFIG = Path("training/configs/demo_finetune.yaml")
#: Decoder layout of the shipped model (issue 16: 2.4× faster network than VainF's dense).
DECODER = "separable"
#: Steps of the decoder swap (class-balanced cross-entropy on cached trunk features).
SWAP_STEPS = 3000
CALIBRATION_FRAMES = 300
TRADEOFF = """Measured with `python benchmarks/demo_model.py --tradeoff` (random weights, one
ONNX Runtime thread, CPU time per frame; AMD EPYC, 2 cores, load 3.3–4.2 from a training
job in another process, so the milliseconds are inflated, the ratios are not):

| MobileNetV2 width | decoder | parameters | ONNX size | 192×384 | 256×512 | 320×640 |
|---|---|---|---|---|---|---|
| 0.35 | dense | 2.12 M | 8.8 MB | 101 ms | 182 ms | 287 ms |
| 0.5 | dense | 2.71 M | 11.2 MB | 106 ms | 188 ms | 289 ms |
| 1.0 | dense | 5.23 M | 21.2 MB | 125 ms | 226 ms | 349 ms |
| **0.5** | **separable** | 2.09 M | 8.7 MB | 45 ms | **77 ms** | 124 ms |

VainF's dense DeepLabv3+ decoder (one 304→256 3×3 convolution at stride 4) costs most of
the time and grows with the pixel count; the backbone width hardly matters for speed
(width 1.0 also breaks the 15 MB budget). The DeepLabv3+ paper's depthwise-separable
decoder takes the network to 0.41× at 256×512, so the demo model ships it (issue 16);
192×384 would be faster again but makes poles, traffic lights and signs 1–3 pixels wide,
the classes that are already the hardest."""


def _world_ready(root: Path) -> bool:
    manifest = root / "synthetic_world.json"
    if not manifest.is_file():
        return False
    data = json.loads(manifest.read_text())
    return all(data.get(key) == value for key, value in WORLD.items())


def anomaly_finetune(
    base: Path, finetune_config: Path, world_root: Path, out_dir: Path
) -> tuple[Path, dict[str, Any]]:
    """Step 4: fine-tune the base checkpoint's head with the fine-tuning tool.

    :return: the fine-tuned checkpoint and what the model card says about the run.
    """
    from training.coco_subset import SubsetRules, build_object_bank
    from training.finetune import load_settings, run

    bank = world_root / "ood_objects"
    if not (bank / "index.json").is_file():
        # The world's COCO-format stand-in for COCO has small square images.
        build_object_bank(
            world_root / "ood_bank" / "annotations" / "instances_train.json",
            world_root / "ood_bank" / "train",
            bank,
            SubsetRules(min_image_side=BANK_IMAGE_SIZE),
        )
    overrides = [
        f"checkpoint={base}",
        f"data_root={world_root / 'cityscapes'}",
        f"anomaly_root={world_root / 'anomaly'}",
        f"bank={bank}",
        f"out_dir={out_dir}",
    ]
    settings, config = load_settings(str(finetune_config), overrides)
    if config.steps_per_epoch is None:
        steps = f"{config.epochs} epochs"
    else:
        steps = f"{config.epochs} epochs × {config.steps_per_epoch} steps"
    started = time.perf_counter()
    run(settings, config)
    checkpoint = out_dir / "model.pt"
    _, meta = load_checkpoint(checkpoint)
    summary = {
        "config": str(finetune_config),
        "minutes": round((time.perf_counter() - started) / 60.0, 1),
        "history": meta.meta["finetune"]["history"],
        "settings": {
            "epochs": config.epochs,
            "steps_per_epoch": config.steps_per_epoch,
            "steps": steps,
            "lr": config.lr,
            "train_part": config.train_part,
            "loss": dataclasses.asdict(config.loss),
            "mix": dataclasses.asdict(config.mix) if config.mix else None,
            "mgu": dataclasses.asdict(config.mgu) if config.mgu else None,
            "val_frames": settings.val_limit,
            "anomaly_frames": WORLD["anomaly"],
        },
    }
    return checkpoint, summary


def _shipped_training_minutes(sidecar: Path) -> float:
    """Base-training minutes recorded in a shipped model's sidecar.

    :raises AnomalySegError: no readable sidecar with that figure.
    """
    try:
        return float(json.loads(sidecar.read_text())["provenance"]["training_minutes"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise AnomalySegError(
            f"{sidecar}: no training_minutes in its provenance ({error}); --base needs the "
            "card of the model the base was shipped with"
        ) from error


def build(
    config_path: Path,
    out_dir: Path,
    skip_train: bool,
    eval_limit: int | None,
    note: str = "",
    finetune_config: Path | None = FINETUNE_CONFIG,
    base_checkpoint: Path | None = None,
    decoder: str = DECODER,
) -> dict[str, Any]:
    """Run every step; returns the figures written to the model card.

    :param finetune_config: anomaly fine-tuning settings; None ships the base network.
    :param base_checkpoint: start from this trained base instead of training one; its
        training time comes from ``out_dir/demo.json`` (the card it was shipped with).
    :param decoder: decoder layout shipped; another than the base's re-trains the
        classification block on the frozen trunk before fine-tuning.
    :raises AnomalySegError: the base checkpoint or its card cannot be read.
    """
    config = load_config(config_path)
    world_root = Path(config.data_root).parent
    if not _world_ready(world_root):
        generate(
            world_root,
            WORLD["train"],
            WORLD["val"],
            WORLD["anomaly"],
            WORLD["ood_bank"],
            WORLD["seed"],
            WORLD["height"],
            WORLD["width"],
        )
    checkpoint = Path(config.out_dir) / "checkpoint.pt"
    if base_checkpoint is not None:
        checkpoint = base_checkpoint
        minutes = _shipped_training_minutes(out_dir / "demo.json")
    elif not (skip_train and checkpoint.is_file()):
        train(config, resume=True)
    network, meta = load_checkpoint(checkpoint)
    # Ship fp16 weights and export exactly those values, so the files agree.
    network = network.half().float().eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / ("demo_base.pt" if finetune_config else "demo.pt")
    if not finetune_config:
        (out_dir / "demo_base.pt").unlink(missing_ok=True)  # from an earlier fine-tuned build
    if base_checkpoint is None or base_checkpoint.resolve() != base.resolve():
        save_checkpoint(base, network.half(), meta.class_names, **meta.meta)
    network.float()
    swap = None
    start = base
    if decoder != meta.architecture.get("decoder", "dense"):
        from training.swap_decoder import SWAP_LR, swap_decoder

        digest = hashlib.sha256(base.read_bytes()).hexdigest()[:12]
        start = Path("output/demo_swap") / digest / f"{decoder}.pt"
        if start.is_file():
            swap = load_checkpoint(start)[1].meta["decoder_swap"]
        else:
            swap = swap_decoder(base, decoder, Path(config.data_root), start, SWAP_STEPS, SWAP_LR)
        network, meta = load_checkpoint(start)
        network = network.half().float().eval()
        if not finetune_config:  # the swapped network is the one shipped and exported
            save_checkpoint(out_dir / "demo.pt", network.half(), meta.class_names, **meta.meta)
            network.float()
    finetuning = None
    if finetune_config:
        # One folder per base network and settings: a fine-tuning state of another base or
        # of other settings is never resumed.
        digest = hashlib.sha256(start.read_bytes() + finetune_config.read_bytes()).hexdigest()[:12]
        finetuned, finetuning = anomaly_finetune(
            start, finetune_config, world_root, Path("output/demo_finetune") / digest
        )
        network, meta = load_checkpoint(finetuned)
        network = network.half().float().eval()
        save_checkpoint(out_dir / "demo.pt", network.half(), meta.class_names, **meta.meta)
        network.float()
    if config.threads:
        torch.set_num_threads(config.threads)

    frames = CityscapesDataset(config.data_root, config.train_split)
    step = max(1, len(frames) // CALIBRATION_FRAMES)
    images = (frames[index][0] for index in range(0, len(frames), step))
    mean, std, count = calibrate(network, images)
    save_sml_stats(out_dir / "demo.sml.json", meta.class_names, mean, std, count)

    from anomaly_seg_ros.networks.export import export_onnx

    if base_checkpoint is None:
        state = torch.load(Path(config.out_dir) / "train_state.pt", weights_only=True)
        minutes = state["elapsed"] / 60.0
    provenance = {
        "training_command": COMMAND,
        "data": "synthetic world",
        "world": WORLD,
        "iterations": meta.meta.get("iteration"),
        "training_minutes": round(minutes, 1),
    }
    if swap is not None:
        provenance["decoder_swap"] = swap
    if finetuning is not None:
        provenance["anomaly_finetuning"] = {
            key: finetuning[key] for key in ("config", "settings", "minutes")
        }
    onnx_path = out_dir / "demo.onnx"
    export_onnx(
        network,
        onnx_path,
        (WORLD["height"], WORLD["width"]),
        meta.class_names,
        provenance=provenance,
    )
    val = evaluate_onnx(
        onnx_path, CityscapesDataset(config.data_root, config.val_split), eval_limit
    )
    (out_dir / "val_metrics.json").write_text(json.dumps(val.summary(), indent=2) + "\n")
    import onnxruntime

    files = {
        name: (out_dir / name).stat().st_size
        for name in ("demo.onnx", "demo.json", "demo.sml.json", "demo.pt", "demo_base.pt")
        if finetuning is not None or name != "demo_base.pt"
    }
    figures = {
        **WORLD,
        "finetuning": finetuning,
        "decoder_swap": swap,
        "width_mult": config.width_mult,
        "train_frames": WORLD["train"],
        "val_frames": WORLD["val"],
        "command": COMMAND,
        "val": val.summary(),
        "latency": {"1": ort_latency(onnx_path, threads=1), "all": ort_latency(onnx_path)},
        "cores": os.cpu_count(),
        "load": round(os.getloadavg()[0], 2),
        "onnxruntime": onnxruntime.__version__,
        "machine": machine_description(),
        "files": files,
        "onnx_sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "tradeoff": TRADEOFF,
        "training": (
            f"{meta.meta.get('iteration')} iterations (batch {config.batch_size}, crops "
            f"{config.crop_size[0]}×{config.crop_size[1]}, {config.optimizer} lr {config.lr}, "
            f"poly decay, class-balanced cross-entropy) in {minutes:.0f} minutes of wall time "
            f"on {machine_description()} shared with other jobs, {config.threads or 'all'} "
            "torch thread(s); config `training/configs/demo.yaml`. " + note
        ).strip(),
    }
    write_model_card(out_dir / "MODEL_CARD.md", figures)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build models/demo/ (see module docstring).")
    parser.add_argument("--config", type=Path, default=Path("training/configs/demo.yaml"))
    parser.add_argument("--out", type=Path, default=Path("models/demo"))
    parser.add_argument("--skip-train", action="store_true", help="reuse a finished run")
    parser.add_argument("--eval-limit", type=int, default=None, help="val frames (default all)")
    parser.add_argument("--note", default="", help="sentence added to the card's training part")
    parser.add_argument(
        "--no-finetune", action="store_true", help="ship the base network (no anomaly fine-tuning)"
    )
    parser.add_argument(
        "--base", type=Path, default=None,
        help="start from this trained base checkpoint (e.g. models/demo/demo_base.pt)",
    )  # fmt: skip
    parser.add_argument(
        "--decoder", choices=DECODERS, default=DECODER,
        help="decoder layout to ship (default %(default)s; see training/swap_decoder.py)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        figures = build(
            args.config,
            args.out,
            args.skip_train,
            args.eval_limit,
            args.note,
            None if args.no_finetune else FINETUNE_CONFIG,
            args.base,
            args.decoder,
        )
    except AnomalySegError as error:
        LOGGER.error("%s", error)
        return 1
    LOGGER.info(
        "val mIoU (present classes) %.3f, ORT %s ms (1 thread)",
        figures["val"]["miou_present"],
        figures["latency"]["1"]["median_ms"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
