"""The host refinement as graph operators: score → SML suppression → smoothing → VDE.

:class:`GraphRefinementModule` takes the anomaly head's logit summary and computes one
chosen score with the chosen refinements, as the host does in
:func:`anomaly_seg_ros.pipeline.scores.compute_score` and
:func:`anomaly_seg_ros.pipeline.refine.refine_score`
(the same score formulas, parameters and derived constants, both read from
:mod:`anomaly_seg_ros.refinement_spec`), with operators that ONNX, ONNX Runtime and
TensorRT run on whole maps (no loops over pixels): MaxPool for the label morphology,
Pad(edge) + Conv for the replicated-border filters, ReduceMin/ReduceMax over column indices
for the road region.
:func:`append_refinement` appends it to an exported model as the extra output
:data:`~anomaly_seg_ros.model.sidecar.REFINED_SCORE_NAME`.

Border conventions follow OpenCV's, which the host uses: ``cv2.dilate``/``cv2.erode``
ignore pixels outside the image (MaxPool pads with −inf), ``filter2D``, ``boxFilter`` and
``sepFilter2D`` with ``BORDER_REPLICATE`` (Pad mode ``edge``).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.model.graph_refinement import GraphRefinement
from anomaly_seg_ros.model.sidecar import ModelInfo
from anomaly_seg_ros.model.summary import INPUT_NAME, OUTPUT_NAMES, REFINED_SCORE_NAME
from anomaly_seg_ros.refinement_spec import (
    SCORE_FORMULAS,
    SCORE_TYPES,
    BoundarySuppression,
    DilatedSmoothing,
    RoadRegion,
)

if TYPE_CHECKING:  # onnx only for export: the torch backend runs the module without it
    import onnx

LOGGER = logging.getLogger(__name__)


def _cross_dilate(mask: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) 3×3-cross dilation (max), out-of-image pixels ignored."""
    vertical = F.max_pool2d(mask, (3, 1), stride=1, padding=(1, 0))
    horizontal = F.max_pool2d(mask, (1, 3), stride=1, padding=(0, 1))
    return torch.maximum(vertical, horizontal)


def _square_erode(mask: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) 3×3-square erosion (min), out-of-image pixels ignored."""
    return -F.max_pool2d(-mask, 3, stride=1, padding=1)


def _total(values: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1) sums of (B, H, W) maps: by rows, then over the rows (float32 sums of at
    most max(H, W) terms each, close to the host's float64 sum)."""
    return values.sum(dim=-1, keepdim=True).sum(dim=-2, keepdim=True)


def score_spread(score: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1) spread of (B, H, W) scores, VDE's unit: the standard deviation of the finite
    values, 0 without any (:func:`anomaly_seg_ros.pipeline.refine.score_spread` on the host)."""
    finite = torch.isfinite(score)
    count = _total(finite.float()).clamp(min=1.0)  # exact up to 2**24 pixels
    mean = _total(torch.where(finite, score, 0.0)) / count
    deviation = torch.where(finite, score - mean, 0.0)
    return torch.sqrt(_total(deviation * deviation) / count)


def _sum_3x3(values: torch.Tensor, ones: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) 3×3 sums with replicated borders (OpenCV BORDER_REPLICATE)."""
    return F.conv2d(F.pad(values, (1, 1, 1, 1), mode="replicate"), ones)


class _GraphMaps:
    """The summary as :class:`~anomaly_seg_ros.refinement_spec.ScoreMaps` for torch."""

    def __init__(self, module: GraphRefinementModule, summary: tuple[torch.Tensor, ...]) -> None:
        self.module = module
        self.label, self.max_logit, self.min_logit, self.logsumexp, self.entropy = summary

    def exp(self, values: torch.Tensor) -> torch.Tensor:
        return torch.exp(values)

    def class_mean(self) -> torch.Tensor:
        return self.module.sml_mean[self.label.long()]

    def class_inverse_std(self) -> torch.Tensor:
        return self.module.sml_inverse_std[self.label.long()]


class GraphRefinementModule(nn.Module):
    """Logit summary (B, H, W) maps → (B, H, W) float32 refined score.

    :param refinement: the score and refinement settings (and SML statistics for ``sml``).
    """

    # Buffers (constants of the exported graph).
    sml_mean: torch.Tensor
    sml_inverse_std: torch.Tensor
    ones_3x3: torch.Tensor
    row_taps: torch.Tensor
    column_taps: torch.Tensor

    def __init__(self, refinement: GraphRefinement) -> None:
        super().__init__()
        config = refinement.config
        self.config = config
        if config.score_type not in SCORE_TYPES:
            raise ModelError(
                f"score {config.score_type!r} unknown; valid: {', '.join(SCORE_TYPES)}"
            )
        if config.score_type == "sml":
            if refinement.sml_mean is None or refinement.sml_std is None:
                raise ModelError("score 'sml' in the graph needs the SML statistics")
            # The host's tables: float32 means and float32 reciprocals of float32 stds.
            mean = np.asarray(refinement.sml_mean, np.float32)
            inverse_std = (1.0 / np.asarray(refinement.sml_std, np.float32)).astype(np.float32)
            self.register_buffer("sml_mean", torch.from_numpy(mean))
            self.register_buffer("sml_inverse_std", torch.from_numpy(inverse_std))
        self.register_buffer("ones_3x3", torch.ones(1, 1, 3, 3))
        self.suppression = BoundarySuppression.from_config(config)
        self.smoothing = DilatedSmoothing.from_config(config)
        self.road = RoadRegion.from_config(config)
        taps = np.asarray(self.smoothing.taps, np.float32)
        self.register_buffer("row_taps", torch.from_numpy(taps).view(1, 1, 1, -1))
        self.register_buffer("column_taps", torch.from_numpy(taps).view(1, 1, -1, 1))

    def score(
        self,
        label: torch.Tensor,
        max_logit: torch.Tensor,
        min_logit: torch.Tensor,
        logsumexp: torch.Tensor,
        entropy: torch.Tensor,
    ) -> torch.Tensor:
        """The chosen score, (B, H, W) float32, higher = more anomalous."""
        maps = _GraphMaps(self, (label, max_logit, min_logit, logsumexp, entropy))
        score: torch.Tensor = SCORE_FORMULAS[self.config.score_type](maps)
        return score

    def suppress_boundaries(self, score: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """:func:`anomaly_seg_ros.pipeline.refine.suppress_boundaries` on (B, 1, H, W) maps."""
        radii = self.suppression.radii
        if not radii:
            return score
        classes = label.float()
        boundaries = (_cross_dilate(classes) != _square_erode(classes)).float()
        # The band of every radius, grown one cross dilation at a time (a diamond of
        # radius r is r cross dilations, also at the image edge).
        bands = {0: boundaries}
        band = boundaries
        for radius in range(1, max(radii) + 1):
            band = _cross_dilate(band)
            bands[radius] = band
        out = score
        for radius in radii:
            band = bands[radius]
            inside = 1.0 - band
            masked = torch.where(band > 0, torch.zeros_like(out), out)
            total = _sum_3x3(masked, self.ones_3x3)
            count = _sum_3x3(inside, self.ones_3x3)
            update = (band > 0) & (count > 0)
            out = torch.where(update, total / count, out)
        return out

    def dilated_smoothing(self, score: torch.Tensor) -> torch.Tensor:
        """:func:`anomaly_seg_ros.pipeline.refine.dilated_smoothing`: the non-zero taps,
        columns then rows (the host's order), replicated borders."""
        dilation, reach = self.smoothing.smoothing_dilation, self.smoothing.reach
        columns = F.conv2d(
            F.pad(score, (0, 0, reach, reach), mode="replicate"),
            self.column_taps,
            dilation=(dilation, 1),
        )
        return F.conv2d(
            F.pad(columns, (reach, reach, 0, 0), mode="replicate"),
            self.row_taps,
            dilation=(1, dilation),
        )

    def road_region(
        self, label: torch.Tensor, max_logit: torch.Tensor, logsumexp: torch.Tensor
    ) -> torch.Tensor:
        """VDE road region, (B, H, W) bool: a pixel whose row holds a seed at or left of it
        and one at or right of it (seed: predicted road with softmax ≥ road_confidence,
        tested as ``max_logit − logsumexp ≥ ln c``)."""
        # The host's float32 threshold of the log-space seed test (exactly the pixels
        # with float32 softmax ≥ c).
        seeds = (label == self.road.road_class) & (
            (max_logit - logsumexp) >= self.road.log_confidence
        )
        width = seeds.shape[-1]
        columns = torch.arange(width, dtype=torch.float32, device=seeds.device)
        left = torch.where(seeds, columns, torch.full_like(columns, float(width)))
        right = torch.where(seeds, columns, torch.full_like(columns, -1.0))
        first = left.amin(dim=-1, keepdim=True)
        last = right.amax(dim=-1, keepdim=True)
        return (columns >= first) & (columns <= last)

    def forward(self, *summary: torch.Tensor) -> torch.Tensor:
        """(label, max_logit, min_logit, logsumexp, entropy), each (B, H, W) → (B, H, W)."""
        config = self.config
        label, max_logit, _, logsumexp, _ = summary
        score = self.score(*summary)
        if config.boundary_suppression or config.dilated_smoothing:
            maps = score.unsqueeze(1)
            if config.boundary_suppression:
                maps = self.suppress_boundaries(maps, label.unsqueeze(1))
            if config.dilated_smoothing:
                maps = self.dilated_smoothing(maps)
            score = maps.squeeze(1)
        if config.vde:
            region = self.road_region(label, max_logit, logsumexp)
            drop: torch.Tensor | float = self.road.drop_amount
            if self.road.uses_spread:
                drop = self.road.drop_amount * score_spread(score)
            score = torch.where(region, score, score - drop)
        return score


#: Largest |graph − host| refined score accepted after an export, per unit of score
#: magnitude (float32 sums in another order: a few ulps of the score).
REFINED_SCORE_TOLERANCE = 1e-5


def _export_module(
    module: GraphRefinementModule, input_size: tuple[int, int], path: Path, opset: int
) -> None:
    """Export ``module`` alone: the five summary maps in, :data:`REFINED_SCORE_NAME` out."""
    from anomaly_seg_ros.networks.onnx_export import torch_export

    height, width = input_size
    probe = (
        torch.zeros(1, height, width, dtype=torch.uint8),
        *(torch.zeros(1, height, width) for _ in OUTPUT_NAMES[1:]),
    )
    torch_export(module.eval(), probe, path, opset, OUTPUT_NAMES, [REFINED_SCORE_NAME])


def refinement_module_onnx(
    config: DetectorConfig,
    input_size: tuple[int, int],
    path: str | Path,
    sml_stats: tuple[np.ndarray, np.ndarray] | None = None,
    opset: int = 18,
) -> None:
    """Write ``config``'s score + refinement alone as an ONNX graph: the five summary maps
    (1, H, W) in (names of the head's outputs), ``refined_score`` out. For tests and
    benchmarks of the refinement without a network.

    :raises ModelError: ``sml`` without statistics.
    """
    module = GraphRefinementModule(GraphRefinement.from_config(config, sml_stats))
    _export_module(module, input_size, Path(path), opset)


def _merge(model: onnx.ModelProto, refinement: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with the refinement graph fed by its summary outputs, one more output."""
    from onnx import compose

    refinement.ir_version = model.ir_version
    merged = compose.merge_models(
        model,
        refinement,
        io_map=[(name, name) for name in OUTPUT_NAMES],
        outputs=[*OUTPUT_NAMES, f"refine/{REFINED_SCORE_NAME}"],
        prefix2="refine/",
    )
    for output in merged.graph.output:
        if output.name == f"refine/{REFINED_SCORE_NAME}":
            output.name = REFINED_SCORE_NAME
    for node in merged.graph.node:
        node.output[:] = [
            REFINED_SCORE_NAME if name == f"refine/{REFINED_SCORE_NAME}" else name
            for name in node.output
        ]
    del merged.metadata_props[:]
    merged.metadata_props.extend(model.metadata_props)
    return merged


def _opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ModelError("the model imports no default ONNX opset")


def append_refinement(
    model_path: str | Path,
    out_path: str | Path,
    config: DetectorConfig,
    sml_stats: tuple[np.ndarray, np.ndarray] | None = None,
    check: bool = True,
) -> ModelInfo:
    """Write ``out_path``: the model ``model_path`` with ``config``'s score and refinement
    as its extra output :data:`REFINED_SCORE_NAME`, and its sidecar recording the choice.

    :param model_path: an exported ``.onnx`` with its sidecar (the logit summary only).
    :param out_path: where to write (may equal ``model_path``; written under a temporary
        name and renamed when complete).
    :param config: the score and refinement settings to bake in (the mask settings are
        not used: the host still thresholds).
    :param sml_stats: (mean, std) per class, required for ``score_type='sml'``.
    :param check: ``onnx.checker`` and an ONNX Runtime check that the graph's refined score
        equals the host refinement of the graph's own summary.
    :return: the sidecar written beside ``out_path``.
    :raises ModelError: the model already has a refined output, ``sml`` without stats, or
        the graph disagrees with the host.
    """
    from dataclasses import replace

    import onnx

    from anomaly_seg_ros.model.sidecar import load_model_info, save_model_info

    model_path, out_path = Path(model_path), Path(out_path)
    info = load_model_info(model_path)
    if info.graph_refinement is not None:
        raise ModelError(
            f"{model_path} already computes a refined score in its graph; append the "
            "refinement to the model exported without one"
        )
    refinement = GraphRefinement.from_config(config, sml_stats)
    module = GraphRefinementModule(refinement)
    model = onnx.load(os.fspath(model_path))
    refined_info = replace(info, graph_refinement=refinement)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent) as scratch:
        part = Path(scratch) / "refinement.onnx"
        _export_module(module, info.input_size, part, _opset(model))
        merged = _merge(model, onnx.load(os.fspath(part)))
        staging = Path(scratch) / out_path.name
        onnx.save(merged, os.fspath(staging))
        if check:
            onnx.checker.check_model(os.fspath(staging), full_check=True)
            _require_host_equality(staging, refined_info, sml_stats)
        os.replace(staging, out_path)
    save_model_info(refined_info, out_path)
    LOGGER.info("wrote %s: %s refined in the graph", out_path, refinement.settings)
    return refined_info


def refinement_error(
    onnx_path: Path,
    info: ModelInfo,
    image: np.ndarray,
    sml_stats: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[float, float]:
    """Run the graph under ONNX Runtime (CPU) on ``image`` and refine its summary on the
    host with the recorded settings.

    :param image: (1, 3, H, W) float32 normalized input.
    :return: (largest |graph − host|, largest |host score|).
    """
    import onnxruntime as ort

    from anomaly_seg_ros.model.summary import LogitSummary
    from anomaly_seg_ros.pipeline.refine import refine_score
    from anomaly_seg_ros.pipeline.scores import compute_score

    if info.graph_refinement is None:
        raise ModelError(f"{onnx_path}: its sidecar records no graph refinement")
    config = info.graph_refinement.config
    session = ort.InferenceSession(os.fspath(onnx_path), providers=["CPUExecutionProvider"])
    names = list(info.output_names)
    outputs = dict(zip(names, session.run(names, {INPUT_NAME: image})))
    summary = LogitSummary.from_outputs(outputs)
    mean, std = sml_stats if sml_stats is not None else (None, None)
    host = refine_score(compute_score(config.score_type, summary, mean, std), summary, config)
    graph = outputs[REFINED_SCORE_NAME][0]
    finite = np.isfinite(host)
    error = float(np.max(np.abs(graph[finite] - host[finite]), initial=0.0))
    if not np.array_equal(np.isfinite(graph), finite):
        error = float("inf")
    return error, float(np.max(np.abs(host[finite]), initial=0.0))


def _require_host_equality(
    onnx_path: Path, info: ModelInfo, sml_stats: tuple[np.ndarray, np.ndarray] | None
) -> None:
    from anomaly_seg_ros.networks.onnx_export import parity_inputs

    for image in parity_inputs(info.input_height, info.input_width):
        error, magnitude = refinement_error(onnx_path, info, image, sml_stats)
        LOGGER.info("in-graph refinement vs host: max |difference| %.2e", error)
        if error > REFINED_SCORE_TOLERANCE * max(1.0, magnitude):
            raise ModelError(
                f"the in-graph refinement disagrees with the host: max |difference| "
                f"{error:.2e} (score magnitude {magnitude:.3g}); not writing {onnx_path.name}"
            )
