"""The bundled demo model: files present and small, sidecar and SML stats match, it runs."""

import json

import numpy as np
import pytest

from anomaly_seg_ros.datasets.cityscapes import to_train_ids
from anomaly_seg_ros.model.bundled import default_model_path
from anomaly_seg_ros.model.classes import CITYSCAPES_CLASSES
from anomaly_seg_ros.model.sidecar import load_model_info
from anomaly_seg_ros.model.sml_stats import load_sml_stats
from anomaly_seg_ros.model.summary import INPUT_NAME, OUTPUT_NAMES

MODEL = default_model_path()
pytestmark = pytest.mark.skipif(
    not MODEL.is_file(), reason=f"{MODEL} not built yet (python -m demo.model.make)"
)


def test_bundle_is_small_and_complete():
    folder = MODEL.parent
    bundle = [folder / name for name in ("demo.onnx", "demo.json", "demo.sml.json")]
    assert all(path.is_file() for path in bundle)
    assert sum(path.stat().st_size for path in bundle) <= 15e6
    assert (folder / "MODEL_CARD.md").is_file() and (folder / "demo.pt").is_file()


def test_shipped_network_is_the_base_with_an_anomaly_finetuned_head():
    """Every weight outside the part fine-tuning trained (final 1×1 or the block holding
    it) equals the base's; running BatchNorm statistics equal too. After a decoder swap
    (training/swap_decoder.py) the block has another layout: everything outside it equals
    the dense base's."""
    from anomaly_seg_ros.networks.checkpoint import load_checkpoint

    if not MODEL.with_name("demo_base.pt").is_file():
        pytest.skip("built with --no-finetune: no demo_base.pt")
    base, _ = load_checkpoint(MODEL.with_name("demo_base.pt"))
    shipped, meta = load_checkpoint(MODEL.with_suffix(".pt"))
    assert meta.meta["finetune"]["config"]["loss"]["kind"] == "topk_ovr"
    base_state, shipped_state = base.state_dict(), shipped.state_dict()
    block = "classifier.classifier."
    if "decoder_swap" in meta.meta:
        assert meta.architecture["decoder"] == meta.meta["decoder_swap"]["decoder"]
        assert meta.meta["finetune"]["config"]["train_part"] == "block"
        trunk = [key for key in base_state if not key.startswith(block)]
        assert trunk == [key for key in shipped_state if not key.startswith(block)]
        assert all(base_state[key].equal(shipped_state[key]) for key in trunk)
        return
    assert base_state.keys() == shipped_state.keys()
    changed = {key for key in base_state if not base_state[key].equal(shipped_state[key])}
    part = meta.meta["finetune"]["config"].get("train_part", "final_conv")
    if part == "final_conv":
        assert changed == {"classifier.classifier.3.weight", "classifier.classifier.3.bias"}
    else:
        assert part == "block"
        assert {"classifier.classifier.0.weight", "classifier.classifier.3.weight"} <= changed
        assert all(key.startswith(block) for key in changed)
        assert not any("running_" in key for key in changed)


def test_sidecar_matches_the_graph_and_the_sml_stats():
    import onnxruntime as ort

    info = load_model_info(MODEL)
    assert info.class_names == CITYSCAPES_CLASSES
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    (graph_input,) = session.get_inputs()
    assert graph_input.name == INPUT_NAME
    assert graph_input.shape == [1, 3, info.input_height, info.input_width]
    assert tuple(output.name for output in session.get_outputs()) == OUTPUT_NAMES
    mean, std = load_sml_stats(MODEL.with_suffix(".sml.json"), info.class_names)
    assert np.all(std > 0) and mean[0] > 0  # road is predicted on training frames


def test_the_checkpoint_is_the_exported_network():
    import onnxruntime as ort
    import torch
    import torch.nn.functional as F

    from anomaly_seg_ros.networks.checkpoint import load_checkpoint

    network, meta = load_checkpoint(MODEL.with_suffix(".pt"))
    info = load_model_info(MODEL)
    assert meta.class_names == info.class_names and meta.architecture == info.architecture
    image = np.random.default_rng(0).standard_normal((1, 3, *info.input_size)).astype(np.float32)
    with torch.inference_mode():
        logits = F.interpolate(
            network(torch.from_numpy(image)),
            size=info.input_size,
            mode="bilinear",
            align_corners=info.align_corners,
        )
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    onnx_labels = session.run(["label"], {INPUT_NAME: image})[0].reshape(info.input_size)
    agreement = (logits.argmax(1)[0].numpy() == onnx_labels).mean()
    assert agreement > 0.99


def test_detector_segments_a_synthetic_val_frame():
    from anomaly_seg_ros.detector import Detector
    from demo.synthetic.generate import render_frame
    from demo.synthetic.scene import World

    detector = Detector.from_path(MODEL, backend="onnxruntime")
    height, width = detector.info.input_size
    frame = render_frame(World(height, width, seed=0), 0, "val", 299)
    labels = detector.detect(frame.image).labels
    truth = to_train_ids(frame.label_ids)
    valid = truth != 255
    assert (labels[valid] == truth[valid]).mean() > 0.8
    card = (MODEL.parent / "MODEL_CARD.md").read_text()
    metrics = json.loads((MODEL.parent / "val_metrics.json").read_text())
    assert f"{metrics['miou_present']:.3f}" in card
