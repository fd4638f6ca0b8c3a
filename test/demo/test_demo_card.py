"""The demo model card: written from make_demo_model's figures, with and without fine-tuning."""

from demo.model.card import write_model_card

HISTORY = [
    {"epoch": 0, "miou_present": 0.752, "max_logit/ap": 0.025, "max_logit/fpr95": 0.651,
     "energy/ap": 0.024, "energy/fpr95": 0.66},
    {"epoch": 1, "seconds": 90.0, "miou_present": 0.78, "max_logit/ap": 0.035,
     "max_logit/fpr95": 0.598, "energy/ap": 0.037, "energy/fpr95": 0.6},
]  # fmt: skip


def figures(finetuning):
    latency = {"median_ms": 80.0, "cpu_ms": 80.0, "fps": 12.5, "runs": 5}
    return {
        "seed": 0, "height": 256, "width": 512, "train_frames": 30, "val_frames": 3,
        "width_mult": 0.5, "command": "python -m demo.model.make",
        "training": "10 iterations.", "onnx_sha256": "ab" * 32,
        "files": {"demo.onnx": 11e6, "demo.pt": 5.6e6},
        "val": {"frames": 3, "miou": 0.7, "miou_present": 0.71, "pixel_accuracy": 0.9,
                "iou": {"road": 0.9, "train": None}},
        "latency": {"1": latency, "all": latency}, "cores": 2, "load": 1.0,
        "onnxruntime": "1.x", "machine": "test CPU", "tradeoff": "(table)",
        "finetuning": finetuning,
    }  # fmt: skip


SETTINGS = {
    "epochs": 1,
    "steps_per_epoch": 200,
    "steps": "1 epochs × 200 steps",
    "lr": 1.25e-4,
    "train_part": "final_conv",
    "loss": {"kind": "topk_ovr", "k": 5, "scale": 2.0, "gamma": 0.05},
    "mix": {"probability": 0.25, "style": "fda"},
    "mgu": None,
    "val_frames": 100,
    "anomaly_frames": 200,
}


def card_text(tmp_path, finetuning):
    card = tmp_path / "MODEL_CARD.md"
    write_model_card(card, figures(finetuning))
    return card.read_text()


def finetuning(**settings):
    return {
        "config": "training/configs/demo_finetune.yaml",
        "minutes": 6.2,
        "history": HISTORY,
        "settings": {**SETTINGS, **settings},
    }


def test_card_says_how_the_head_was_finetuned(tmp_path):
    text = card_text(tmp_path, finetuning())
    assert "| road | 0.900 |" in text and "| train | absent |" in text
    assert "The head alone" in text and "loss topk_ovr (K 5, s 2.0, γ 0.05)" in text
    assert "AnomalyMix (p = 0.25, style fda) with objects from the world's proxy OoD bank" in text
    assert "1 epochs × 200 steps, AdamW" in text and "the first 100 val frames" in text
    assert "200-frame test-anomaly set" in text
    assert "| 0 | 75.2 | 2.5 | 65.1 | 2.4 | 66.0 |" in text
    assert "| 1 | 78.0 | 3.5 | 59.8 | 3.7 | 60.0 |" in text
    assert "`demo_base.pt`" in text and "for 1 epochs × 200 steps:" in text


def test_card_without_anomalymix_or_step_cap_or_finetuning(tmp_path):
    text = card_text(
        tmp_path,
        finetuning(
            steps_per_epoch=None,
            steps="3 epochs",
            mix=None,
            mgu={"probability": 0.5},
            train_part="decoder",
            val_frames=None,
        ),
    )
    assert "Masked Gradient Update pixels (p = 0.5)" in text and "AnomalyMix" not in text
    assert "None" not in text and "for 3 epochs:" in text
    assert "The head and the decoder" in text and "mIoU on the val frames" in text
    plain = card_text(tmp_path, None)
    assert "No anomaly fine-tuning" in plain and "demo_base.pt" not in plain
    assert "(no anomaly fine-tuning)" in plain


def test_card_describes_a_decoder_swap(tmp_path):
    swap = {
        "decoder": "separable", "train_frames": 30, "steps": 3000, "batch": 8, "lr": 0.002,
        "minutes": 14.0, "val_frames": 3, "miou_before": 0.752, "miou_after": 0.731,
    }  # fmt: skip
    card = tmp_path / "MODEL_CARD.md"
    write_model_card(card, {**figures(finetuning(train_part="block")), "decoder_swap": swap})
    text = card.read_text()
    assert text.startswith("# Demo model: DeepLabv3+ MobileNetV2 (width 0.5, separable decoder)")
    assert "### Decoder swap" in text and "dense base 75.2 %, separable\n73.1 %" in text
    assert "3000 steps of batch 8" in text and "`demo_base.pt` is the dense base." in text
    assert "depthwise 3×3 + BN + ReLU + pointwise 1×1" in text  # what the fine-tuning trained
    assert "### Decoder swap" not in card_text(tmp_path, finetuning())
