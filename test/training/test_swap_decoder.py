"""Decoder swap: the trunk is kept bit for bit, the new block learns, bad input is refused."""

import pytest
import torch

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.networks import create_network
from anomaly_seg_ros.networks.checkpoint import load_checkpoint, save_checkpoint
from demo.synthetic.generate import generate
from training.swap_decoder import BLOCK, main, swap_decoder

NAMES = [f"class{i}" for i in range(19)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("swap")
    generate(
        out, train=6, val=2, anomaly=0, ood_bank=0, seed=2, height=64, width=128, progress=False
    )
    torch.manual_seed(0)
    base = save_checkpoint(
        out / "base.pt", create_network("mobilenetv2", 19, 16, width_mult=0.25).eval(), NAMES
    )
    return out / "cityscapes", base


def test_swap_keeps_the_trunk_and_trains_a_separable_block(world, tmp_path):
    data_root, base = world
    record = swap_decoder(
        base, "separable", data_root, tmp_path / "swapped.pt", steps=6, lr=1e-2, batch=2,
        crop_cells=(2, 4), val_frames=2, progress=False,
    )  # fmt: skip
    before, _ = load_checkpoint(base)
    after, meta = load_checkpoint(tmp_path / "swapped.pt")
    assert meta.architecture["decoder"] == "separable"
    assert after.final_conv_path == "classifier.classifier.6"
    trunk = {k: v for k, v in before.state_dict().items() if not k.startswith(BLOCK)}
    swapped = after.state_dict()
    assert all(torch.equal(value, swapped[key]) for key, value in trunk.items())
    # the block's BatchNorm statistics were learned (not the 0/1 they start from)
    assert not torch.equal(swapped[BLOCK + "1.running_mean"], torch.zeros(304))
    assert meta.meta["decoder_swap"] == record
    assert record["steps"] == 6 and record["train_frames"] == 6
    assert 0.0 <= record["miou_after"] <= 1.0


def test_unknown_decoder_and_a_network_without_aspp_are_refused(world, tmp_path):
    data_root, base = world
    with pytest.raises(ConfigError, match="dense, separable"):
        swap_decoder(base, "wide", data_root, tmp_path / "x.pt")
    wrn = save_checkpoint(tmp_path / "wrn.pt", create_network("wideresnet38", 19, 8), NAMES)
    with pytest.raises(ConfigError, match="not a DeepLabv3\\+"):
        swap_decoder(wrn, "separable", data_root, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["--base", str(wrn), "--out", str(tmp_path / "x.pt"), "--data-root", str(data_root)])
    assert exit_info.value.code == 2
