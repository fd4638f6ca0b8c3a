"""ONNX Runtime backend session settings (spinning, threads) on a real exported graph."""

import pytest

from anomaly_seg_ros.backends.onnxruntime import OnnxRuntimeBackend
from anomaly_seg_ros.model.sidecar import load_model_info
from anomaly_seg_ros.pipeline.strips import available_cpus


@pytest.mark.parametrize("spinning, threads", [(False, 0), (True, 1)])
def test_session_spinning_and_threads(tiny_model, spinning, threads):
    backend = OnnxRuntimeBackend(
        tiny_model, load_model_info(tiny_model), threads=threads, spinning=spinning
    )
    options = backend.session.get_session_options()
    expected = "1" if spinning else "0"
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == expected
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == expected
    assert options.intra_op_num_threads == (threads or available_cpus())
    backend.close()


def test_a_quantised_model_is_described_as_int8_not_fp32() -> None:
    from anomaly_seg_ros.backends import create_backend
    from anomaly_seg_ros.model.bundled import models_dir

    quantised = models_dir() / "demo" / "demo_int8.onnx"
    if not quantised.is_file():
        pytest.skip("the optional int8 demo model is not in this tree")
    with create_backend("onnxruntime", quantised) as backend:
        description = backend.describe()
    assert "(int8 QDQ)" in description and "fp32" not in description, description
