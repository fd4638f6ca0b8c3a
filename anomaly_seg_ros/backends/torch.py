"""PyTorch backend: the same graph (network + anomaly head) eagerly, on CPU or CUDA.

For GPUs without TensorRT and for measurement. On CUDA it can run the body in fp16,
use channels_last memory format and replay the whole frame as a CUDA graph. When the model's
sidecar records a graph refinement (``graph_refinement``), the score and its refinement run
after the head on the same device, as in an ONNX or TensorRT graph exported with
``refine_in_graph``: the host then only thresholds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from anomaly_seg_ros.backends.base import InferenceBackend
from anomaly_seg_ros.errors import BackendError, ModelError
from anomaly_seg_ros.model.sidecar import ModelInfo, sidecar_path
from anomaly_seg_ros.model.sidecar import load_model_info as _load_sidecar
from anomaly_seg_ros.model.summary import OUTPUT_NAMES, REFINED_SCORE_NAME, LogitSummary
from anomaly_seg_ros.networks.head import AnomalyHead


class TorchBackend(InferenceBackend):
    """Runs :class:`AnomalyHead` over a torch network.

    :param network: the segmentation network (weights loaded).
    :param device: ``cpu``, ``cuda`` or ``cuda:N``.
    :param fp16: run the body in float16 (CUDA only); default: the sidecar's precision.
    :param channels_last: NHWC memory format for the convolutions (faster on tensor cores).
    :param cuda_graphs: capture one frame as a CUDA graph and replay it (static shapes).
    """

    name = "torch"

    def __init__(
        self,
        model_path: Path,
        info: ModelInfo,
        network: torch.nn.Module,
        device: str = "cpu",
        fp16: bool | None = None,
        channels_last: bool = False,
        cuda_graphs: bool = False,
    ) -> None:
        super().__init__(info, model_path)
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendError(f"device {device!r} requested but CUDA is not available")
        use_fp16 = info.precision == "fp16" if fp16 is None else fp16
        if use_fp16 and self.device.type != "cuda":
            use_fp16 = False  # CPU convolutions in half precision are slow and inexact
        self.dtype = torch.float16 if use_fp16 else torch.float32
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        # Module.to takes memory_format (torch docs); the stubs' overloads leave it out.
        network = network.eval().to(  # type: ignore[call-overload]
            self.device, self.dtype, memory_format=self.memory_format
        )
        self.head = AnomalyHead(network, self.dtype).eval()
        self.refinement: torch.nn.Module | None = None
        self.output_names: tuple[str, ...] = OUTPUT_NAMES
        if info.graph_refinement is not None:
            from anomaly_seg_ros.networks.refine_graph import GraphRefinementModule

            module = GraphRefinementModule(info.graph_refinement)
            self.refinement = module.eval().to(self.device)
            self.output_names = (*OUTPUT_NAMES, REFINED_SCORE_NAME)
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static_input: torch.Tensor | None = None
        self._static_outputs: tuple[torch.Tensor, ...] = ()
        if cuda_graphs:
            if self.device.type != "cuda":
                raise BackendError("cuda_graphs needs a CUDA device")
            self._capture()

    def _run(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        summary: tuple[torch.Tensor, ...] = self.head(
            image.contiguous(memory_format=self.memory_format)
        )
        if self.refinement is None:
            return summary
        return (*summary, self.refinement(*summary))

    def _capture(self) -> None:
        """Record one frame into a CUDA graph after warm-up on a side stream."""
        shape = (1, 3, self.info.input_height, self.info.input_width)
        self._static_input = torch.zeros(shape, device=self.device)
        stream = torch.cuda.Stream(self.device)  # type: ignore[no-untyped-call]  # untyped in torch
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.inference_mode(), torch.cuda.stream(stream):
            for _ in range(3):
                self._run(self._static_input)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        self._graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(self._graph):
            self._static_outputs = self._run(self._static_input)

    def infer(self, image: np.ndarray) -> LogitSummary:
        self.check_input(image)
        host = torch.from_numpy(image)
        with torch.inference_mode():
            if self._graph is not None and self._static_input is not None:
                self._static_input.copy_(host, non_blocking=False)
                self._graph.replay()
                outputs = self._static_outputs
            else:
                outputs = self._run(host.to(self.device))
            arrays = [tensor.cpu().numpy() for tensor in outputs]
        return LogitSummary.from_outputs(dict(zip(self.output_names, arrays)))

    def describe(self) -> str:
        precision = "fp16" if self.dtype == torch.float16 else "fp32"
        graph = ", CUDA graph" if self._graph is not None else ""
        refined = ", refinement in the graph" if self.refinement is not None else ""
        return f"torch {torch.__version__} [{self.device}] ({precision}{graph}{refined})"

    def close(self) -> None:
        self._graph = None
        self._static_outputs = ()
        self._static_input = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def create(
    model_path: Path,
    info: ModelInfo | None = None,
    input_size: tuple[int, int] | None = None,
    **options: object,
) -> TorchBackend:
    """Load an ``anomaly_seg_ros`` checkpoint (``.pt``) and wrap it.

    The input size comes from ``info``, else from the sidecar ``<model>.json`` beside the
    checkpoint, else from ``input_size``.

    :raises ModelError: not a checkpoint, or no way to know the input size.
    """
    from anomaly_seg_ros.networks.checkpoint import load_checkpoint

    if model_path.suffix != ".pt":
        raise ModelError(
            f"{model_path}: the torch backend needs a .pt checkpoint (ONNX files run on "
            "onnxruntime or tensorrt)"
        )
    network, meta = load_checkpoint(model_path)
    if info is None and sidecar_path(model_path).is_file():
        info = _load_sidecar(model_path)
    if info is None:
        if input_size is None:
            raise ModelError(
                f"{model_path}: no sidecar {sidecar_path(model_path).name} beside the "
                "checkpoint; pass input_size=(height, width)"
            )
        info = ModelInfo(
            class_names=tuple(meta.class_names),
            input_height=int(input_size[0]),
            input_width=int(input_size[1]),
            mean=tuple(meta.mean),  # type: ignore[arg-type]
            std=tuple(meta.std),  # type: ignore[arg-type]
            align_corners=bool(network.align_corners),
            architecture=dict(meta.architecture),
        )
    if info.num_classes != network.num_classes:
        raise ModelError(
            f"{model_path}: checkpoint has {network.num_classes} classes, its sidecar "
            f"{info.num_classes}"
        )
    return TorchBackend(model_path, info, network, **options)  # type: ignore[arg-type]
