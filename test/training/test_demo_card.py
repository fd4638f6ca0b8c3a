"""The demo model card: written from make_demo_model's figures, with and without fine-tuning."""

import pytest

from training.demo_card import write_model_card

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
        "width_mult": 0.5, "command": "python -m training.make_demo_model",
        "training": "10 iterations.", "onnx_sha256": "ab" * 32,
        "files": {"demo.onnx": 11e6, "demo.pt": 5.6e6},
        "val": {"frames": 3, "miou": 0.7, "miou_present": 0.71, "pixel_accuracy": 0.9,
                "iou": {"road": 0.9, "train": None}},
        "latency": {"1": latency, "all": latency}, "cores": 2, "load": 1.0,
        "onnxruntime": "1.x", "machine": "test CPU", "tradeoff": "(table)",
        "finetuning": finetuning,
    }  # fmt: skip


@pytest.mark.parametrize("finetuned", [True, False])
def test_card_says_whether_and_how_the_head_was_finetuned(tmp_path, finetuned):
    finetuning = {
        "config": "training/configs/demo_finetune.yaml",
        "minutes": 6.2,
        "history": HISTORY,
        "settings": {
            "epochs": 1,
            "steps_per_epoch": 200,
            "lr": 1.25e-4,
            "loss": {"kind": "topk_ovr", "k": 5, "scale": 2.0, "gamma": 0.05},
            "mix": {"probability": 0.25, "style": "fda"},
        },
    }
    card = tmp_path / "MODEL_CARD.md"
    write_model_card(card, figures(finetuning if finetuned else None))
    text = card.read_text()
    assert "| road | 0.900 |" in text and "| train | absent |" in text
    if finetuned:
        assert "topk_ovr (K 5, s 2.0,\nγ 0.05), AnomalyMix p = 0.25, style fda" in text
        assert "| 0 | 75.2 | 2.5 | 65.1 | 2.4 | 66.0 |" in text
        assert "| 1 | 78.0 | 3.5 | 59.8 | 3.7 | 60.0 |" in text
        assert "`demo_base.pt`" in text and "for 200 steps" in text
    else:
        assert "No anomaly fine-tuning" in text and "demo_base.pt" not in text
        assert "no anomaly fine-tuning" in text
