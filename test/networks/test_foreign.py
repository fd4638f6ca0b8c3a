"""Bring your own model: a foreign ONNX graph or torch module wrapped with the anomaly head.

Three small networks built here: an ONNX-only graph (written with onnx.helper, dynamic
input size, logits at half resolution), a torch module emitting 20 channels (a void
channel to drop) and a torch module with max-unpooling (ENet/SegNet style, exported
through the dynamo exporter).
"""

import json
import textwrap

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from anomaly_seg_ros.cli import main
from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.model.sidecar import load_model_info
from anomaly_seg_ros.model.summary import OUTPUT_NAMES
from anomaly_seg_ros.networks.export import ParityTolerance, compare_summaries
from anomaly_seg_ros.networks.head import summarize
from anomaly_seg_ros.pipeline.preprocess import to_network_input

SIZE = (64, 128)

NETS = textwrap.dedent(
    '''
    import torch
    from torch import nn


    class Twenty(nn.Module):
        """19 classes + a void channel, at a quarter of the input size."""

        def __init__(self):
            super().__init__()
            layers = [nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 20, 3, 2, 1)]
            self.body = nn.Sequential(*layers)

        def forward(self, x):
            return {"out": self.body(x)}  # torchvision's segmentation models return a dict


    class Unpool(nn.Module):
        """Max-pool with indices, then max-unpool (ENet's decoder)."""

        def __init__(self):
            super().__init__()
            self.encode = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU())
            self.pool = nn.MaxPool2d(2, return_indices=True)
            self.middle = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1), nn.ReLU())
            self.unpool = nn.MaxUnpool2d(2)
            self.classify = nn.Conv2d(8, 19, 1)

        def forward(self, x):
            pooled, indices = self.pool(self.encode(x))
            return self.classify(self.unpool(self.middle(pooled), indices))


    def twenty():
        return Twenty()


    def unpool():
        return Unpool()
    '''
)


@pytest.fixture
def nets(tmp_path, monkeypatch):
    """The module file in the current directory (as a user runs the command), imported."""
    (tmp_path / "my_nets.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    return importlib.import_module("my_nets")


def onnx_only_model(path, channels=19, seed=0):
    """A graph that exists only as ONNX: 1×1 conv at stride 2 + ReLU-free logits, input
    size dynamic (batch and spatial axes named)."""
    generator = np.random.default_rng(seed)
    weight = generator.standard_normal((channels, 3, 1, 1)).astype(np.float32)
    bias = generator.standard_normal(channels).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["rgb", "w", "b"], ["scores"], strides=[2, 2])],
        "onnx_only",
        [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return weight, bias


def reference_labels(logits: torch.Tensor, align_corners=False) -> np.ndarray:
    up = F.interpolate(logits, size=SIZE, mode="bilinear", align_corners=align_corners)
    return up.argmax(1)[0].numpy().astype(np.uint8)


def network_rgb(rng):
    return rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8)


def test_onnx_only_graph_is_wrapped_with_its_normalisation(tmp_path, rng, capsys, caplog):
    source = tmp_path / "foreign.onnx"
    weight, bias = onnx_only_model(source)
    out = tmp_path / "wrapped.onnx"
    argv = ["export", "--onnx", str(source), "--out", str(out)]
    # No normalisation named: refused, saying how (forgetting it must be hard)
    with caplog.at_level("ERROR"):
        assert main([*argv, "--input-size", "64", "128"]) == 1
    assert "--normalization imagenet|unit|raw" in caplog.text and not out.exists()
    caplog.clear()
    # Dynamic input size without --input-size: refused, naming the option
    with caplog.at_level("ERROR"):
        assert main([*argv, "--normalization", "unit"]) == 1
    assert "dynamic" in caplog.text and "--input-size H W" in caplog.text
    assert not out.exists()
    assert main([*argv, "--normalization", "unit", "--input-size", "64", "128"]) == 0
    assert (
        "normalization unit: mean [0.0, 0.0, 0.0] std [1.0, 1.0, 1.0]" in capsys.readouterr().out
    )
    info = load_model_info(out)
    assert info.mean == (0.0, 0.0, 0.0) and info.std == (1.0, 1.0, 1.0)
    assert info.input_size == SIZE and info.num_classes == 19
    assert info.provenance["normalization"] == "unit"
    assert "parity_checked" not in info.provenance  # (False only with --no-parity-check)

    rgb = network_rgb(rng)
    with Detector.from_path(out, DetectorConfig(), "onnxruntime") as detector:
        result = detector.detect(rgb)
    # By hand: RGB in [0, 1] through the 1×1 conv at stride 2, upsampled, argmax
    image = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    logits = F.conv2d(image, torch.from_numpy(weight), torch.from_numpy(bias), stride=2)
    expected = reference_labels(logits)
    assert np.mean(result.labels == expected) > 0.999  # argmax ties flip with rounding


def test_package_model_and_foreign_options_stay_apart(tmp_path, tiny_model):
    out = tmp_path / "x.onnx"
    # A model exported by the package: --onnx appends a refinement, nothing else
    assert main(["export", "--onnx", str(tiny_model), "--out", str(out)]) == 1
    assert (
        main(["export", "--onnx", str(tiny_model), "--normalization", "unit", "--out", str(out)])
        == 1
    )
    assert main(["export", "--random-init", "--input-size", "64", "64", "--mean", "0", "0",
                 "0", "--out", str(out)]) == 1  # fmt: skip
    assert not out.exists()


def test_twenty_channels_module_drops_the_void_channel(tmp_path, nets, rng, caplog):
    torch.manual_seed(0)
    network = nets.twenty().eval()
    weights = tmp_path / "twenty.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in network.state_dict().items()}},
               weights)  # fmt: skip
    out = tmp_path / "twenty.onnx"
    argv = ["export", "--module", "my_nets:twenty", "--weights", str(weights), "--normalization",
            "imagenet", "--input-size", "64", "128", "--out", str(out)]  # fmt: skip
    with caplog.at_level("ERROR"):
        assert main(argv) == 1  # 20 channels, 19 classes
    assert "--drop-channels 19" in caplog.text and not out.exists()
    assert main([*argv, "--drop-channels", "19"]) == 0
    info = load_model_info(out)
    assert info.num_classes == 19 and info.provenance["normalization"] == "imagenet"
    rgb = network_rgb(rng)
    with Detector.from_path(out, DetectorConfig(), "onnxruntime") as detector:
        result = detector.detect(rgb)
    mean, std = np.asarray(info.mean), np.asarray(info.std)
    image = torch.from_numpy(((rgb / 255.0 - mean) / std).astype(np.float32)).permute(2, 0, 1)
    with torch.inference_mode():
        logits = network(image[None])["out"][:, :19]
    assert np.mean(result.labels == reference_labels(logits)) > 0.999


@pytest.mark.parametrize("route", ["module", "onnx"])
def test_max_unpooling_network_exports_both_ways(tmp_path, nets, rng, route):
    torch.manual_seed(1)
    network = nets.unpool().eval()
    out = tmp_path / "unpool.onnx"
    common = ["--normalization", "imagenet", "--out", str(out)]
    if route == "module":
        weights = tmp_path / "unpool.pth"
        torch.save(network.state_dict(), weights)
        argv = ["export", "--module", "my_nets:unpool", "--weights", str(weights),
                "--input-size", "64", "128", *common]  # fmt: skip
    else:  # the user's own export: max-unpooling needs the dynamo exporter
        source = tmp_path / "enet_like.onnx"
        torch.onnx.export(network, (torch.zeros(1, 3, *SIZE),), str(source), dynamo=True,
                          input_names=["input"], output_names=["logits"])  # fmt: skip
        argv = ["export", "--onnx", str(source), *common]
    assert main(argv) == 0
    rgb = network_rgb(rng)
    with Detector.from_path(out, DetectorConfig(), "onnxruntime") as detector:
        labels = detector.detect(rgb).labels
    with torch.inference_mode():
        logits = network(torch.from_numpy(to_network_input(rgb, detector.info)))
    assert np.mean(labels == reference_labels(logits)) > 0.999


def _summary(logits: np.ndarray) -> dict[str, np.ndarray]:
    return dict(zip(OUTPUT_NAMES, (t.numpy() for t in summarize(torch.from_numpy(logits)))))


def test_parity_passes_tie_flips_and_names_what_fails(rng):
    """Max-unpooling ties: the max logit moves within 2×2 windows on a quarter of them,
    labels unchanged; pixelwise that is a large error, in distribution none."""
    logits = rng.standard_normal((1, 19, 64, 128)).astype(np.float32) * 3
    reference = _summary(logits)
    candidate = dict(reference)
    flipped = reference["max_logit"].copy()
    windows = flipped[0].reshape(32, 2, 64, 2).transpose(0, 2, 1, 3)  # (32, 64, 2, 2) view
    chosen = rng.random((32, 64)) < 0.24
    windows[chosen] = windows[chosen][:, ::-1, ::-1]  # values swap places in the window
    candidate["max_logit"] = flipped
    parity = compare_summaries(reference, candidate)
    assert parity.max_logit_error > 1.0  # pixelwise the old check refused it
    assert parity.label_agreement == 1.0 and parity.problems("fp32") == []

    shifted = dict(reference, max_logit=reference["max_logit"] + 0.5)
    problems = compare_summaries(reference, shifted).problems("fp32")
    assert len(problems) == 1 and "--parity-score-tolerance" in problems[0]
    assert "of its spread in distribution" in problems[0]
    assert compare_summaries(reference, shifted).problems("fp32", ParityTolerance(None, 1.0)) == []

    wrong = dict(reference, label=np.where(rng.random((1, 64, 128)) < 0.01, 0, 1).astype(np.uint8))
    problems = compare_summaries(reference, wrong).problems("fp32")
    assert any("--parity-label-agreement" in p and "% of pixels" in p for p in problems)
    assert compare_summaries(reference, wrong).problems("fp32", ParityTolerance(0.0)) == []


def test_sidecar_written_with_the_model_only(tmp_path, rng):
    source = tmp_path / "foreign.onnx"
    onnx_only_model(source, channels=7)
    out = tmp_path / "wrapped.onnx"
    # 7 channels, 19 default class names: refused before anything is written
    argv = ["export", "--onnx", str(source), "--normalization", "raw", "--input-size", "32", "32"]
    assert main([*argv, "--out", str(out)]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.onnx"]
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(f"k{i}" for i in range(7)) + "\n")
    assert main([*argv, "--classes", str(classes), "--out", str(out)]) == 0
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["class_names"] == [f"k{i}" for i in range(7)]
    assert data["std"] == pytest.approx([1 / 255] * 3) and data["mean"] == [0.0, 0.0, 0.0]


def test_module_errors_are_one_line_each(tmp_path, nets, caplog):
    out = tmp_path / "m.onnx"
    base = ["export", "--normalization", "imagenet", "--input-size", "64", "128"]
    weights = tmp_path / "other.pth"
    torch.save(nets.unpool().state_dict(), weights)  # weights of another network
    cases = {
        ("--module", "my_nets"): "expected PKG.MODULE:FACTORY",
        ("--module", "no_such_module:f"): "No module named 'no_such_module'",
        ("--module", "my_nets:missing"): "has no attribute 'missing'",
        ("--module", "my_nets:twenty", "--weights", str(weights)): "does not fit my_nets:twenty",
        ("--random-init", "--weights", str(weights)): "--weights goes with --module",
    }
    for arguments, expected in cases.items():
        caplog.clear()
        with caplog.at_level("ERROR"):
            assert main([*base, *arguments, "--out", str(out)]) == 1, arguments
        assert expected in caplog.text, (arguments, caplog.text)
        assert len(caplog.records) == 1 and not out.exists()
