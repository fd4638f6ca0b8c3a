"""Export with the anomaly head: named outputs, sidecar, metadata, ONNX Runtime parity."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from anomaly_seg_ros.errors import ModelError  # noqa: E402
from anomaly_seg_ros.model.sidecar import load_model_info  # noqa: E402
from anomaly_seg_ros.model.summary import INPUT_NAME, OUTPUT_NAMES  # noqa: E402
from anomaly_seg_ros.networks import create_network  # noqa: E402
from anomaly_seg_ros.networks.export import export_onnx  # noqa: E402
from anomaly_seg_ros.networks.head import AnomalyHead  # noqa: E402

CLASSES = [f"c{i}" for i in range(19)]


def test_graph_has_named_summary_outputs_and_metadata(tiny_model):
    model = onnx.load(str(tiny_model))
    assert [i.name for i in model.graph.input] == [INPUT_NAME]
    assert [o.name for o in model.graph.output] == list(OUTPUT_NAMES)
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata["num_classes"] == "19"
    assert (metadata["input_height"], metadata["input_width"]) == ("64", "128")
    session = ort.InferenceSession(str(tiny_model), providers=["CPUExecutionProvider"])
    shapes = {o.name: o.shape for o in session.get_outputs()}
    # No C×H×W tensor leaves the graph: every output is one map at the input size.
    assert all(shape == [1, 64, 128] for shape in shapes.values())
    types = {o.name: o.type for o in session.get_outputs()}
    assert types["label"] == "tensor(uint8)"
    assert types["entropy"] == "tensor(float)"


def test_sidecar_describes_the_model(tiny_model):
    info = load_model_info(tiny_model)
    assert info.class_names == tuple(f"class{i}" for i in range(19))
    assert info.input_size == (64, 128)
    assert info.channel_order == "RGB" and info.align_corners is False
    assert info.architecture["backbone"] == "mobilenetv2"
    raw = json.loads(tiny_model.with_suffix(".json").read_text())
    assert raw["output_names"] == list(OUTPUT_NAMES)
    assert "exported_at" in raw["provenance"]


def test_head_summary_matches_reference_formulas():
    torch.manual_seed(1)
    network = create_network("mobilenetv2", 19, 16, width_mult=0.25).eval()
    head = AnomalyHead(network).eval()
    image = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        label, max_logit, min_logit, logsumexp, entropy = head(image)
        logits = head.upsampled_logits(image)
    log_p = torch.log_softmax(logits, dim=1)
    torch.testing.assert_close(max_logit, logits.max(1).values)
    torch.testing.assert_close(min_logit, logits.min(1).values)
    torch.testing.assert_close(logsumexp, torch.logsumexp(logits, 1))
    torch.testing.assert_close(entropy, -(log_p.exp() * log_p).sum(1), atol=1e-5, rtol=1e-5)
    assert label.dtype == torch.uint8
    assert torch.equal(label.long(), logits.argmax(1))
    assert logits.shape[-2:] == (64, 96)


def test_onnxruntime_agrees_with_pytorch(tiny_model, rng):
    """Issue requirement: labels equal on ≥ 99.9 % of pixels, max-logit error ≤ 1e-3 (fp32)."""
    torch.manual_seed(0)  # the tiny_model fixture's weights
    network = create_network("mobilenetv2", 19, 16, width_mult=0.25).eval()
    head = AnomalyHead(network).eval()
    image = rng.normal(size=(1, 3, 64, 128)).astype(np.float32)
    session = ort.InferenceSession(str(tiny_model), providers=["CPUExecutionProvider"])
    onnx_out = dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), {INPUT_NAME: image})))
    with torch.no_grad():
        torch_out = dict(zip(OUTPUT_NAMES, (t.numpy() for t in head(torch.from_numpy(image)))))
    assert np.mean(onnx_out["label"] == torch_out["label"]) >= 0.999
    assert np.abs(onnx_out["max_logit"] - torch_out["max_logit"]).max() <= 1e-3
    for name in ("min_logit", "logsumexp", "entropy"):
        assert np.abs(onnx_out[name] - torch_out[name]).max() <= 1e-3, name


def test_fp16_export_keeps_float32_summary(tmp_path):
    torch.manual_seed(0)
    network = create_network("mobilenetv2", 19, 16, width_mult=0.25)
    before = {k: v.clone() for k, v in network.state_dict().items()}
    info = export_onnx(network, tmp_path / "half.onnx", (64, 64), CLASSES, precision="fp16")
    assert info.precision == "fp16"
    # The caller's network is untouched (still float32, same weights, still training mode).
    assert all(torch.equal(before[k], v) for k, v in network.state_dict().items())
    assert network.training and next(network.parameters()).dtype == torch.float32
    model = onnx.load(str(tmp_path / "half.onnx"))
    weight_types = {init.data_type for init in model.graph.initializer if len(init.dims) == 4}
    assert weight_types == {onnx.TensorProto.FLOAT16}
    session = ort.InferenceSession(str(tmp_path / "half.onnx"), providers=["CPUExecutionProvider"])
    types = {o.name: o.type for o in session.get_outputs()}
    assert types["max_logit"] == "tensor(float)" and types["label"] == "tensor(uint8)"


def test_class_name_count_must_match_channels(tmp_path):
    network = create_network("mobilenetv2", 19, 16, width_mult=0.25)
    with pytest.raises(ModelError, match="19 output channels but 3 class names"):
        export_onnx(network, tmp_path / "x.onnx", (64, 64), ["a", "b", "c"])
    assert not (tmp_path / "x.onnx").exists()


def test_fp16_export_writes_nothing_unless_parity_was_checked(tmp_path, monkeypatch):
    """An ONNX Runtime build without some fp16 kernels cannot run the parity check (this
    machine's can, so the failure is provoked): the export must refuse, not warn."""
    import anomaly_seg_ros.networks.export as export

    def no_fp16_kernel(head, onnx_path, image):
        raise RuntimeError("NOT_IMPLEMENTED : Could not find an implementation for Conv(11)")

    monkeypatch.setattr(export, "check_parity", no_fp16_kernel)
    network = create_network("mobilenetv2", 19, 16, width_mult=0.25)
    path = tmp_path / "half.onnx"
    with pytest.raises(ModelError, match=r"could not be checked.*--no-parity-check"):
        export_onnx(network, path, (64, 64), CLASSES, precision="fp16")
    assert list(tmp_path.iterdir()) == []
    info = export_onnx(network, path, (64, 64), CLASSES, precision="fp16", parity=False)
    assert path.is_file() and info.provenance["parity_checked"] is False
    assert load_model_info(path).provenance["parity_checked"] is False
