"""Bad input gets a clear error naming the problem, never a silent wrong result."""

import json
import shutil

import numpy as np
import pytest

from anomaly_seg_ros.backends import create_backend
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.errors import BackendError, ConfigError, InputError, ModelError


@pytest.fixture(scope="module")
def detector(tiny_model):
    with Detector.from_path(tiny_model, backend="onnxruntime") as detector:
        yield detector


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((10, 10, 3), np.float32), "must be uint8"),
        (np.zeros((10, 10), np.uint8), r"must be \(H, W, 3\)"),
        (np.zeros((10, 10, 4), np.uint8), r"must be \(H, W, 3\)"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_bad_images_are_rejected(detector, image, message):
    with pytest.raises(InputError, match=message):
        detector.detect(image)


def test_detector_still_works_after_bad_input(detector):
    with pytest.raises(InputError):
        detector.detect(np.zeros((5, 5), np.uint8))
    assert detector.detect(np.zeros((20, 30, 3), np.uint8)).labels.shape == (20, 30)


def test_backend_rejects_wrong_tensor(detector):
    with pytest.raises(InputError, match="shape"):
        detector.backend.infer(np.zeros((1, 3, 10, 10), np.float32))


def copy_model(tiny_model, folder):
    model = folder / "model.onnx"
    shutil.copy(tiny_model, model)
    shutil.copy(tiny_model.with_suffix(".json"), folder / "model.json")
    return model


def test_missing_model_names_the_file(tmp_path):
    with pytest.raises(ModelError, match=r"nothere\.onnx not found"):
        Detector.from_path(tmp_path / "nothere.onnx")


def test_missing_sidecar_names_the_file(tiny_model, tmp_path):
    model = copy_model(tiny_model, tmp_path)
    (tmp_path / "model.json").unlink()
    with pytest.raises(ModelError, match=r"model\.json not found"):
        Detector.from_path(model, backend="onnxruntime")


def test_corrupt_model_file(tiny_model, tmp_path):
    model = copy_model(tiny_model, tmp_path)
    model.write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelError, match="cannot load the model"):
        Detector.from_path(model, backend="onnxruntime")


def edit_sidecar(folder, **changes):
    path = folder / "model.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_sidecar_with_other_input_size(tiny_model, tmp_path):
    model = copy_model(tiny_model, tmp_path)
    edit_sidecar(tmp_path, input_height=128)
    with pytest.raises(ModelError, match="does not match the sidecar's input size"):
        Detector.from_path(model, backend="onnxruntime")


def test_sidecar_with_other_class_count(tiny_model, tmp_path):
    model = copy_model(tiny_model, tmp_path)
    # Colours for 20 classes too, so that only the network's class count disagrees.
    edit_sidecar(tmp_path, class_names=[f"c{i}" for i in range(20)], class_colors=[[0, 0, 0]] * 20)
    with pytest.raises(ModelError, match="num_classes=19 but its sidecar says 20"):
        Detector.from_path(model, backend="onnxruntime")


def test_malformed_sidecar(tiny_model, tmp_path):
    model = copy_model(tiny_model, tmp_path)
    (tmp_path / "model.json").write_text("{ not json")
    with pytest.raises(ModelError, match="cannot read sidecar"):
        Detector.from_path(model)
    edit_sidecar_text = json.dumps({"format": "something/else", "version": 1})
    (tmp_path / "model.json").write_text(edit_sidecar_text)
    with pytest.raises(ModelError, match="not an anomaly_seg_ros model sidecar"):
        Detector.from_path(model)


def test_sml_stats_for_other_classes(tiny_model, tmp_path):
    from anomaly_seg_ros.model.sml_stats import save_sml_stats

    stats = save_sml_stats(tmp_path / "s.json", ["a", "b"], np.zeros(2), np.ones(2))
    with pytest.raises(ModelError, match="recalibrate"):
        Detector.from_path(tiny_model, sml_stats=stats)


def test_unknown_backend_and_score(tiny_model):
    with pytest.raises(ConfigError, match="valid: auto, onnxruntime, tensorrt, torch"):
        create_backend("openvino", tiny_model)
    with pytest.raises(ConfigError, match="score_type 'mls' unknown"):
        Detector.from_path(tiny_model).config.replace(score_type="mls")


def test_torch_backend_refuses_onnx(tiny_model):
    pytest.importorskip("torch")
    with pytest.raises(ModelError, match=r"needs a \.pt checkpoint"):
        create_backend("torch", tiny_model)


def test_unavailable_runtime_is_a_clear_error(tiny_model):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match="backend 'tensorrt' is not available"):
            create_backend("tensorrt", tiny_model)
    else:
        pytest.skip("tensorrt is installed here")


def test_outputs_of_another_size_are_refused_at_start(tiny_model, tmp_path):
    onnx = pytest.importorskip("onnx")
    model = copy_model(tiny_model, tmp_path)
    graph_model = onnx.load(model)
    graph = graph_model.graph
    # every output taken at every second pixel: a graph that answers at half size
    graph.initializer.extend(
        [
            onnx.numpy_helper.from_array(np.array(values, np.int64), name)
            for name, values in (
                ("half_starts", [0, 0]),
                ("half_ends", [2**31, 2**31]),
                ("half_axes", [-2, -1]),
                ("half_steps", [2, 2]),
            )
        ]
    )
    for output in graph.output:
        full = f"{output.name}_full"
        for node in graph.node:
            node.output[:] = [full if name == output.name else name for name in node.output]
            node.input[:] = [full if name == output.name else name for name in node.input]
        graph.node.append(
            onnx.helper.make_node(
                "Slice",
                [full, "half_starts", "half_ends", "half_axes", "half_steps"],
                [output.name],
            )
        )
        dims = output.type.tensor_type.shape.dim
        dims[-2].dim_value, dims[-1].dim_value = 32, 64
    onnx.save(graph_model, model)
    with pytest.raises(ModelError, match=r"output 'label' has shape \[1, 32, 64\], expected "
                       r"\[1, 64, 128\]"):  # fmt: skip
        Detector.from_path(model, backend="onnxruntime")
