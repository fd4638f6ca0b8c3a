"""SML calibration: per-class max-logit statistics, file format, command line."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.model.sml_stats import MaxLogitStatistics, load_sml_stats
from anomaly_seg_ros.networks import create_network
from anomaly_seg_ros.networks.checkpoint import save_checkpoint
from demo.synthetic.generate import generate
from training.calibrate_sml import calibrate
from training.calibrate_sml import main as calibrate_main


class ColourLogits(nn.Module):
    """Three classes whose logits are fixed linear functions of the RGB input."""

    align_corners = False

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.conv.weight.copy_(
                torch.tensor([[2.0, 0, 0], [0, 3.0, 0], [-1.0, -1.0, -1.0]])[..., None, None]
            )
            self.conv.bias.copy_(torch.tensor([0.0, -0.5, -20.0]))  # class 2 never wins

    def forward(self, x):
        return self.conv(x)


def test_statistics_match_a_direct_computation():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (8, 12, 3), dtype=np.uint8) for _ in range(3)]
    network = ColourLogits()
    mean, std, count = calibrate(network, images)
    logits = np.concatenate(
        [
            network(
                torch.from_numpy(
                    ((im / 255.0 - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225))
                    .astype(np.float32)
                    .transpose(2, 0, 1)
                )[None]
            )
            .detach()
            .numpy()
            for im in images
        ],
        axis=0,
    )
    predicted, max_logit = logits.argmax(1).ravel(), logits.max(1).ravel()
    for cls in (0, 1):
        values = max_logit[predicted == cls]
        assert count[cls] == values.size > 0
        assert mean[cls] == pytest.approx(values.mean(), abs=1e-4)
        assert std[cls] == pytest.approx(values.std(), abs=1e-4)
    assert (mean[2], std[2], count[2]) == (0.0, 1.0, 0)
    assert count.sum() == 3 * 8 * 12 and mean.dtype == np.float32


def test_running_statistics_are_independent_of_batching():
    logits = torch.randn(4, 5, 6, 7)
    max_logit, predicted = (t.numpy() for t in logits.max(dim=1))
    whole, split = MaxLogitStatistics(5), MaxLogitStatistics(5)
    whole.add(max_logit, predicted)
    split.add(max_logit[:1], predicted[:1])
    split.add(max_logit[1:], predicted[1:])
    for a, b in zip(whole.result(), split.result()):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_command_writes_the_detector_format(tmp_path):
    generate(
        tmp_path / "w",
        train=2,
        val=0,
        anomaly=0,
        ood_bank=0,
        seed=2,
        height=64,
        width=128,
        progress=False,
    )
    torch.manual_seed(0)
    network = create_network("mobilenetv2", 19, 16, width_mult=0.25).eval()
    names = [f"class{i}" for i in range(19)]
    save_checkpoint(tmp_path / "tiny.pt", network, names)
    out = tmp_path / "stats.json"
    argv = [
        "--checkpoint",
        str(tmp_path / "tiny.pt"),
        "--data-root",
        str(tmp_path / "w/cityscapes"),
        "--out",
        str(out),
        "--frames",
        "2",
    ]
    assert calibrate_main(argv) == 0
    data = json.loads(out.read_text())
    assert data["format"] == "anomaly_seg_ros/sml_stats" and data["version"] == 1
    assert data["class_names"] == names and sum(data["num_pixels"]) == 2 * 64 * 128
    mean, std = load_sml_stats(out, names)
    assert mean.shape == std.shape == (19,) and np.all(std > 0)
    unseen = np.asarray(data["num_pixels"]) == 0
    assert np.all(mean[unseen] == 0) and np.all(std[unseen] == 1)
    with pytest.raises(ModelError, match="recalibrate"):
        load_sml_stats(out, names[:-1])
