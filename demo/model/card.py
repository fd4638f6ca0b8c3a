"""Figures and model card of the bundled demo model: val mIoU of the ONNX, ORT latency."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from anomaly_seg_ros.datasets.cityscapes import CityscapesDataset
from anomaly_seg_ros.evaluation.segmentation_metrics import SegmentationEvaluator
from training.seg_eval import ValMetrics, metrics_from_confusion


def evaluate_onnx(
    model_path: Path, frames: CityscapesDataset, limit: int | None = None
) -> ValMetrics:
    """Val metrics of an exported model through the Detector (ONNX Runtime), as deployed."""
    from anomaly_seg_ros.detector import Detector

    evaluator = SegmentationEvaluator(frames.class_names)
    count = len(frames) if limit is None else min(limit, len(frames))
    with Detector.from_path(model_path, backend="onnxruntime") as detector:
        for index in range(count):
            image, label = frames[index]
            evaluator.process(detector.detect(image).labels, label)
    result = metrics_from_confusion(evaluator.confusion, frames.class_names)
    return ValMetrics(result.metrics, result.miou_present, count)


def ort_latency(model_path: Path, runs: int = 50, threads: int = 0) -> dict[str, Any]:
    """Median and 90th-percentile latency of one ONNX Runtime inference (graph only).

    :param threads: intra-op threads (0 = ONNX Runtime's choice, the cores).
    :return: ``{"median_ms", "cpu_ms", "p90_ms", "fps", "runs", "threads", "input"}``.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    image = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    name = session.get_inputs()[0].name
    for _ in range(5):
        session.run(None, {name: image})
    times, cpu_times = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        session.run(None, {name: image})
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    median = float(np.median(times))
    return {
        "median_ms": round(1000 * median, 1),
        # CPU seconds of this process per run: what the graph costs whatever else runs on
        # the machine (with several threads it includes ONNX Runtime's spin-waiting).
        "cpu_ms": round(1000 * float(np.median(cpu_times)), 1),
        "p90_ms": round(1000 * float(np.percentile(times, 90)), 1),
        "fps": round(1.0 / median, 1),
        "runs": runs,
        "threads": threads,
        "input": list(shape),
    }


def write_model_card(path: Path, figures: dict[str, Any]) -> None:
    """Write ``MODEL_CARD.md`` from the figures gathered by :mod:`demo.model.make`."""
    val = figures["val"]
    rows = "\n".join(
        f"| {name} | {'absent' if iou is None else f'{iou:.3f}'} |"
        for name, iou in val["iou"].items()
    )
    one, every = figures["latency"]["1"], figures["latency"]["all"]
    sizes = "\n".join(
        f"| `{name}` | {size / 1e6:.2f} MB |" for name, size in figures["files"].items()
    )
    width_mult, size = figures["width_mult"], f"{figures['height']}×{figures['width']}"
    finetuning, swap = figures.get("finetuning"), figures.get("decoder_swap")
    if finetuning:
        before = "anomaly fine-tuning"
        if swap:
            before = f"the {swap['decoder']} decoder swap\nand anomaly fine-tuning"
            before = f"with the dense decoder, before {before}"
        else:
            before = f"before {before}"
        checkpoints = (
            f"`demo_base.pt` is the segmentation\nnetwork {before} (the starting point of\n"
            "`research/synthetic_table.py` and of your own fine-tuning experiments)."
        )
        anomaly_limits = (
            f"Its anomaly fine-tuning saw only this world's synthetic OoD data, for "
            f"{finetuning['settings']['steps']}:\nexpect scores that separate those kinds of "
            "objects, not real anomalies."
        )
    else:
        checkpoints = "It is the starting point of anomaly fine-tuning."
        anomaly_limits = (
            "Its anomaly scores are those of a plain segmentation network "
            "(no anomaly fine-tuning)."
        )
    network = f"DeepLabv3+ MobileNetV2 (width {width_mult}"
    network += f", {swap['decoder']} decoder)" if swap else ")"
    text = f"""# Demo model: {network} on the synthetic world

The embedded default model of `anomaly_seg_ros`: small enough for a CPU, trained only on
the procedural driving world of `demo/synthetic/`. It shows the whole chain working;
it knows nothing about real streets. For a car, train or import a Cityscapes model.

## Files

| file | size |
|---|---|
{sizes}

sha256 of `demo.onnx`: `{figures["onnx_sha256"]}`.

`demo.onnx` + `demo.json` (sidecar) + `demo.sml.json` (SML statistics) are the bundled
model the Detector and the node load; `demo.pt` is the same weights (stored as fp16,
exported from exactly these values) as a package checkpoint. {checkpoints}

## Data

Synthetic world, seed {figures["seed"]}: {figures["train_frames"]} training and
{figures["val_frames"]} validation frames at {figures["height"]}×{figures["width"]},
Cityscapes layout and label ids (`python -m demo.synthetic.generate`). Classes drawn:
all Cityscapes train classes except train and motorcycle.

## Input

RGB {figures["height"]}×{figures["width"]} (height × width), ImageNet mean/std, output
stride 16, logits at stride 4 upsampled in the graph (anomaly head: label, max logit, min
logit, logsumexp, entropy).

## Training

```
{figures["command"]}
```

{figures["training"]}

{swap_section(swap)}{finetuning_section(finetuning, swap)}

## Validation ({val["frames"]} in-world val frames, exported ONNX through the Detector)

mIoU over classes present in the labels: **{val["miou_present"]:.3f}**
(mIoU as cityscapesscripts counts it, classes predicted but absent included:
{val["miou"]:.3f}); pixel accuracy {val["pixel_accuracy"]:.3f}.

| class | IoU |
|---|---|
{rows}

## Speed

ONNX Runtime {figures["onnxruntime"]} on the CPU, graph only at {size}
(median over {one["runs"]} runs; `python benchmarks/demo_model.py` re-measures):

| intra-op threads | wall time | frames/s | CPU time per frame |
|---|---|---|---|
| 1 | {one["median_ms"]} ms | {one["fps"]} | {one["cpu_ms"]} ms |
| all ({figures["cores"]}) | {every["median_ms"]} ms | {every["fps"]} | {every["cpu_ms"]} ms |

Machine: {figures["machine"]}; 1-minute load average while measuring:
{figures["load"]} (other jobs share the cores, so wall times vary; one thread's CPU time
per frame is the stable figure).

## Trade-off

{figures["tradeoff"]}

## Limits

Trained only on procedural scenes: flat streets, daylight, no rain or night, no trains or
motorcycles, one camera model family. On real camera images its labels are not
meaningful; it is for trying the chain (node, bags, evaluation, fine-tuning) end to end.
{anomaly_limits}
"""
    path.write_text(text)


def _ood_data(settings: dict[str, Any]) -> str:
    """Which OoD data the fine-tuning used, in words."""
    mix, mgu = settings.get("mix"), settings.get("mgu")
    parts = []
    if mix:
        parts.append(
            f"AnomalyMix (p = {mix['probability']}, style {mix['style']}) with objects from "
            "the world's proxy OoD bank"
        )
    if mgu:
        parts.append(f"Masked Gradient Update pixels (p = {mgu['probability']})")
    return " and ".join(parts) or "no OoD data"


def _percent(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    return "–" if value is None else f"{100 * value:.1f}"


#: What the card says for each ``FinetuneConfig.train_part``.
TRAINED_TEXT = {
    "final_conv": "The head alone (final 1×1 classifier; backbone, decoder and BatchNorm frozen)",
    "block": "The classification block (3×3 conv + BN + ReLU + 1×1 after feature fusion; "
    "backbone, ASPP and BatchNorm statistics frozen)",
    "block/separable": "The classification block (depthwise 3×3 + BN + ReLU + pointwise "
    "1×1 + BN + ReLU + 1×1 after feature fusion; backbone, ASPP and BatchNorm statistics "
    "frozen)",
    "decoder": "The head and the decoder (ASPP + fusion; BatchNorm statistics frozen)",
}


def swap_section(swap: dict[str, Any] | None) -> str:
    """The card's part on the decoder swap (``training/swap_decoder.py``), or nothing."""
    if not swap:
        return ""
    return f"""### Decoder swap

The base's classification block was then rebuilt as the DeepLabv3+ paper's
{swap["decoder"]} decoder (depthwise 3×3 → BN → ReLU → pointwise 1×1 → BN → ReLU → 1×1,
about 9× fewer multiply-adds than VainF's dense 3×3) and trained from random weights on the
frozen backbone, ASPP and low-level projection (`python -m training.swap_decoder`, cached
trunk features of the {swap["train_frames"]} training frames, random crops, class-balanced
cross-entropy, {swap["steps"]} steps of batch {swap["batch"]}, AdamW lr {swap["lr"]} with
poly decay; {swap["minutes"]} minutes). Val mIoU on the first {swap["val_frames"]} val
frames: dense base {100 * swap["miou_before"]:.1f} %, {swap["decoder"]}
{100 * swap["miou_after"]:.1f} %. `demo_base.pt` is the dense base.

"""


def finetuning_section(
    finetuning: dict[str, Any] | None, swap: dict[str, Any] | None = None
) -> str:
    """The card's part on anomaly fine-tuning: settings and the per-epoch history."""
    if not finetuning:
        return "No anomaly fine-tuning (`--no-finetune`)."
    settings = finetuning["settings"]
    loss = settings["loss"]
    part = settings.get("train_part", "final_conv")
    if swap and part == "block" and swap["decoder"] == "separable":
        part = f"block/{swap['decoder']}"
    trained = TRAINED_TEXT[part]
    val = settings.get("val_frames")
    val_text = f"the first {val} val frames" if val else "the val frames"
    rows = "\n".join(
        f"| {record['epoch']} | {_percent(record, 'miou_present')} | "
        + " | ".join(
            f"{_percent(record, f'{score}/ap')} | {_percent(record, f'{score}/fpr95')}"
            for score in ("max_logit", "energy")
        )
        + " |"
        for record in finetuning["history"]
    )
    return f"""### Anomaly fine-tuning

{trained}
was then fine-tuned with `{finetuning["config"]}`:
loss {loss["kind"]} (K {loss["k"]}, s {loss["scale"]}, γ {loss["gamma"]}),
{_ood_data(settings)},
{settings["steps"]}, AdamW lr {settings["lr"]} with poly decay; {finetuning["minutes"]} minutes.
Per epoch (epoch 0 = the base network; mIoU on {val_text}, AP / FPR95 on the
{settings["anomaly_frames"]}-frame test-anomaly set, no refinement, %):

| epoch | mIoU | Max Logit AP | FPR95 | Energy AP | FPR95 |
|---|---|---|---|---|---|
{rows}

The mIoU rises because the head keeps learning in-world pixels too (the L_id term); the
synthetic-world table shows the same rise without any OoD loss, and how each loss compares
(`research/results/synthetic_table.md`, docs/finetuning.md)."""


def machine_description() -> str:
    """A one-line description of this machine."""
    import os

    processor = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        processor = names[0] if names else processor
    return f"{processor}, {os.cpu_count()} CPU cores, {platform.system()}"
