"""ONNX Runtime backend: CPU by default, CUDA execution provider when available."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from anomaly_seg_ros.backends.base import InferenceBackend
from anomaly_seg_ros.errors import BackendError, ModelError
from anomaly_seg_ros.model.sidecar import ModelInfo, load_model_info
from anomaly_seg_ros.model.summary import INPUT_NAME, LogitSummary
from anomaly_seg_ros.pipeline.strips import available_cpus

#: ONNX metadata keys written by the exporter and checked against the sidecar.
METADATA_KEYS = ("num_classes", "input_height", "input_width")


class OnnxRuntimeBackend(InferenceBackend):
    """Runs the exported graph with ONNX Runtime.

    :param providers: execution providers in order of preference; default CUDA (if this
        onnxruntime build has it) then CPU.
    :param threads: intra-op threads; 0 = one per CPU this process may use (the budget
        the host strip pool uses too: the network and the host refinement run one after
        the other, so they share the cores rather than split them).
    :param spinning: let idle ONNX Runtime threads spin (ONNX Runtime's default). Off by
        default: spinning threads keep burning the cores after a run, while the host
        post-processing needs them (docs/performance.md).
    """

    name = "onnxruntime"

    def __init__(
        self,
        model_path: Path,
        info: ModelInfo,
        providers: list[str] | None = None,
        threads: int = 0,
        spinning: bool = False,
    ) -> None:
        super().__init__(info, model_path)
        available = ort.get_available_providers()
        wanted = providers or ["CUDAExecutionProvider", "CPUExecutionProvider"]
        chosen = [name for name in wanted if name in available]
        if not chosen:
            raise BackendError(
                f"none of the execution providers {wanted} is available (have {available})"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or available_cpus()
        options.inter_op_num_threads = 1  # the graph runs sequentially (default executor)
        allow = "1" if spinning else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", allow)
        options.add_session_config_entry("session.inter_op.allow_spinning", allow)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                os.fspath(model_path), sess_options=options, providers=chosen
            )
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise ModelError(
                f"{model_path}: ONNX Runtime cannot load the model: {error}"
            ) from error
        self._check_graph()
        self.providers = self.session.get_providers()

    def _check_graph(self) -> None:
        """Fail at start-up when the graph does not match its sidecar."""
        source = str(self.model_path)
        inputs = self.session.get_inputs()
        if [i.name for i in inputs] != [INPUT_NAME]:
            raise ModelError(
                f"{source}: graph inputs {[i.name for i in inputs]} != [{INPUT_NAME!r}]; "
                "export it with `anomaly-seg export`"
            )
        expected_shape = [1, 3, self.info.input_height, self.info.input_width]
        if list(inputs[0].shape) != expected_shape:
            raise ModelError(
                f"{source}: graph input shape {inputs[0].shape} does not match the sidecar's "
                f"input size {expected_shape}"
            )
        names = [o.name for o in self.session.get_outputs()]
        if sorted(names) != sorted(self.info.output_names):
            raise ModelError(
                f"{source}: graph outputs {names}, expected {list(self.info.output_names)} "
                "(its sidecar belongs to another export)"
            )
        self.check_output_shapes({o.name: o.shape for o in self.session.get_outputs()}, source)
        metadata = self.session.get_modelmeta().custom_metadata_map
        expected = {
            "num_classes": self.info.num_classes,
            "input_height": self.info.input_height,
            "input_width": self.info.input_width,
        }
        for key in METADATA_KEYS:
            if key in metadata and int(metadata[key]) != expected[key]:
                raise ModelError(
                    f"{source}: the graph was exported with {key}={metadata[key]} but its "
                    f"sidecar says {expected[key]}; the sidecar belongs to another model"
                )

    def infer(self, image: np.ndarray) -> LogitSummary:
        self.check_input(image)
        names = self.info.output_names
        outputs = self.session.run(list(names), {INPUT_NAME: image})
        return LogitSummary.from_outputs(dict(zip(names, outputs)))

    def describe(self) -> str:
        providers = ", ".join(self.providers)
        return f"onnxruntime {ort.__version__} [{providers}] ({self.info.precision_label})"

    def close(self) -> None:
        self.session = None


def create(
    model_path: Path, info: ModelInfo | None = None, **options: object
) -> OnnxRuntimeBackend:
    """Factory used by :func:`anomaly_seg_ros.backends.create_backend`."""
    if model_path.suffix != ".onnx":
        raise ModelError(f"{model_path}: the onnxruntime backend needs an .onnx file")
    return OnnxRuntimeBackend(model_path, info or load_model_info(model_path), **options)  # type: ignore[arg-type]
