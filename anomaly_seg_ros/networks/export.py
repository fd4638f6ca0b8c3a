"""Export a network with its anomaly head to ONNX (+ JSON sidecar), then check parity.

Every export is followed by ``onnx.checker`` and an ONNX Runtime vs PyTorch comparison on
a random and a structured input; a model that disagrees is not written.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from anomaly_seg_ros import __version__
from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.model.classes import Color, default_class_colors
from anomaly_seg_ros.model.sidecar import IMAGENET_MEAN, IMAGENET_STD, ModelInfo, save_model_info
from anomaly_seg_ros.model.summary import INPUT_NAME, OUTPUT_NAMES
from anomaly_seg_ros.networks.head import AnomalyHead
from anomaly_seg_ros.networks.onnx_export import parity_inputs, torch_export

LOGGER = logging.getLogger(__name__)

#: Parity required of an fp32 export (issue: labels ≥ 99.9 %, max logit ≤ 1e-3).
FP32_LABEL_AGREEMENT = 0.999
FP32_MAX_LOGIT_ERROR = 1e-3
#: Trained segmentation logits stay below this magnitude, where 1e-3 holds as it is.
#: Untrained deep networks (random ResNet-101, WRN38) reach |logit| ~ 3000, where fp32
#: rounding alone exceeds 1e-3; the tolerance then grows in proportion to the magnitude.
TYPICAL_LOGIT_MAGNITUDE = 50.0
#: fp16 bodies round differently; the labels must still agree almost everywhere.
FP16_LABEL_AGREEMENT = 0.99
FP16_MAX_LOGIT_ERROR = 0.1
#: Where the max logit differs pixel by pixel but the labels agree, the export still
#: passes when the max logit's *distribution* agrees: every reported quantile within this
#: share of the spread (0.1 % … 99.9 % quantile range). Networks with max-unpooling
#: (ENet, SegNet) need it: in a 2×2 pooling window whose values tie up to rounding, ONNX
#: Runtime and PyTorch may pick different positions, which moves a logit by a whole value
#: on a few pixels while the labels and the score distribution stay the same.
SCORE_DISTRIBUTION_TOLERANCE = 0.01
#: Quantiles (percent) compared by the distribution check.
DISTRIBUTION_QUANTILES = (0.1, 1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0, 99.9)


@dataclass(frozen=True)
class ParityTolerance:
    """What an export must meet; ``None`` fields take the precision's default.

    :param label_agreement: least share of pixels with the same label (0 … 1); option
        ``--parity-label-agreement`` (in percent).
    :param score_distribution: largest quantile difference of the max logit, as a share of
        its spread, accepted where the pixelwise error is larger; option
        ``--parity-score-tolerance``.
    """

    label_agreement: float | None = None
    score_distribution: float = SCORE_DISTRIBUTION_TOLERANCE


@dataclass(frozen=True)
class Parity:
    """ONNX Runtime vs the reference (PyTorch, or the wrapped ONNX body) on one input."""

    label_agreement: float
    max_logit_error: float
    summary_errors: dict[str, float]
    #: largest |max logit| seen, to scale the tolerance of untrained networks
    logit_magnitude: float = 0.0
    #: largest difference of a max-logit quantile, as a share of the reference's spread
    distribution_error: float = 0.0

    def problems(
        self, precision: str, tolerance: ParityTolerance = ParityTolerance()
    ) -> list[str]:
        """What fails, each naming the quantity, its value, the limit and the option that
        changes it; empty when the export passes."""
        scale = max(1.0, self.logit_magnitude / TYPICAL_LOGIT_MAGNITUDE)
        if precision == "fp16":
            agreement, error = FP16_LABEL_AGREEMENT, FP16_MAX_LOGIT_ERROR
        else:
            agreement, error = FP32_LABEL_AGREEMENT, FP32_MAX_LOGIT_ERROR
        if tolerance.label_agreement is not None:
            agreement = tolerance.label_agreement
        found = []
        if self.label_agreement < agreement:
            found.append(
                f"labels equal on {100 * self.label_agreement:.4f} % of pixels (needs "
                f">= {100 * agreement:g} %: --parity-label-agreement)"
            )
        if (
            self.max_logit_error > error * scale
            and self.distribution_error > tolerance.score_distribution
        ):
            found.append(
                f"max-logit error {self.max_logit_error:.3g} pixelwise (needs <= "
                f"{error * scale:.3g}) and {self.distribution_error:.4f} of its spread in "
                f"distribution (needs <= {tolerance.score_distribution:g}: "
                "--parity-score-tolerance)"
            )
        return found

    def ok(self, precision: str, tolerance: ParityTolerance = ParityTolerance()) -> bool:
        return not self.problems(precision, tolerance)


def compare_summaries(
    reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]
) -> Parity:
    """:class:`Parity` of two sets of head outputs (name → array, ``OUTPUT_NAMES``)."""
    agreement = float(np.mean(candidate["label"] == reference["label"]))
    errors = {
        name: float(
            np.max(np.abs(candidate[name].astype(np.float64) - reference[name].astype(np.float64)))
        )
        for name in OUTPUT_NAMES[1:]
    }
    magnitude = float(np.max(np.abs(reference["max_logit"])))
    quantiles = [np.percentile(np.asarray(m, np.float64), DISTRIBUTION_QUANTILES)
                 for m in (reference["max_logit"], candidate["max_logit"])]  # fmt: skip
    spread = max(float(quantiles[0][-1] - quantiles[0][0]), 1e-6)
    distribution = float(np.max(np.abs(quantiles[1] - quantiles[0]))) / spread
    return Parity(agreement, errors["max_logit"], errors, magnitude, distribution)


def check_parity(head: AnomalyHead, onnx_path: Path, image: np.ndarray) -> Parity:
    """Compare the ONNX graph under ONNX Runtime (CPU) with the torch head on ``image``."""
    import onnxruntime as ort

    session = ort.InferenceSession(os.fspath(onnx_path), providers=["CPUExecutionProvider"])
    onnx_out = dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), {INPUT_NAME: image})))
    with torch.inference_mode():
        torch_out = dict(zip(OUTPUT_NAMES, (t.numpy() for t in head(torch.from_numpy(image)))))
    return compare_summaries(torch_out, onnx_out)


def export_onnx(
    network: nn.Module,
    path: str | Path,
    input_size: tuple[int, int],
    class_names: Sequence[str],
    precision: str = "fp32",
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    provenance: dict[str, Any] | None = None,
    opset: int = 18,
    check: bool = True,
    class_colors: Sequence[Color] | None = None,
    parity: bool = True,
    refine_in_graph: DetectorConfig | None = None,
    sml_stats: tuple[np.ndarray, np.ndarray] | None = None,
    parity_tolerance: ParityTolerance = ParityTolerance(),
) -> ModelInfo:
    """Export ``network`` + :class:`AnomalyHead` as ``path`` (.onnx) and its sidecar.

    :param network: a network of :mod:`anomaly_seg_ros.networks` (any module returning
        (B, C, h, w) logits with ``align_corners`` works).
    :param input_size: static (height, width) of the input.
    :param class_names: one name per logit channel.
    :param precision: ``fp32`` or ``fp16`` (the body in half precision; the summary
        stays float32). TensorRT takes the precision from the graph.
    :param check: run ``onnx.checker`` and the ONNX Runtime parity check.
    :param class_colors: RGB per class for the sidecar; default the Cityscapes colours.
    :param parity: with ``check``, refuse to write a model whose ONNX Runtime outputs
        disagree with PyTorch or cannot be computed; False writes it unchecked (a warning,
        and ``parity_checked: false`` in the provenance).
    :param refine_in_graph: also compute this config's score and refinement in the graph,
        as the extra output ``refined_score`` (see
        :func:`~anomaly_seg_ros.networks.refine_graph.append_refinement`).
    :param sml_stats: per-class (mean, std), needed when ``refine_in_graph`` scores ``sml``.
    :param parity_tolerance: what the parity check accepts (:class:`ParityTolerance`).
    :return: the sidecar written beside the model.
    :raises ModelError: parity with PyTorch fails or cannot be checked, or the class count
        does not match.
    """
    path = Path(path)
    if precision not in ("fp32", "fp16"):
        raise ModelError(f"precision must be fp32 or fp16, got {precision!r}")
    height, width = (int(v) for v in input_size)
    # Export a copy: casting to fp16 and eval mode must not change the caller's network.
    network = copy.deepcopy(network).eval().float()
    body_dtype = torch.float16 if precision == "fp16" else torch.float32
    probe = torch.zeros(1, 3, height, width)
    with torch.inference_mode():
        channels = network(probe).shape[1]
    if channels != len(class_names):
        raise ModelError(
            f"the network has {channels} output channels but {len(class_names)} class names"
        )
    head = AnomalyHead(network.to(body_dtype), body_dtype).eval()
    info = ModelInfo(
        class_names=tuple(class_names),
        input_height=height,
        input_width=width,
        mean=tuple(float(v) for v in mean),  # type: ignore[arg-type]
        std=tuple(float(v) for v in std),  # type: ignore[arg-type]
        align_corners=head.align_corners,
        precision=precision,
        architecture=dict(getattr(network, "architecture", {})),
        class_colors=tuple(
            (int(r), int(g), int(b))
            for r, g, b in class_colors or default_class_colors(len(class_names))
        ),
        provenance={
            "exported_by": f"anomaly_seg_ros {__version__}",
            "torch": torch.__version__,
            "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "opset": opset,
            **({} if parity else {"parity_checked": False}),
            **(provenance or {}),
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        staging = Path(scratch) / path.name
        _torch_export(head, probe, staging, opset)
        model = onnx.load(os.fspath(staging))
        _set_metadata(model, info)
        onnx.save(model, os.fspath(staging))
        if check:
            onnx.checker.check_model(os.fspath(staging), full_check=True)
            if parity:
                require_parity(
                    lambda image: check_parity(head, staging, image),
                    staging,
                    info,
                    parity_tolerance,
                    "PyTorch",
                )
            else:
                LOGGER.warning("%s: parity with PyTorch NOT checked (parity=False)", path.name)
        if refine_in_graph is None:
            os.replace(staging, path)
            save_model_info(info, path)
        else:
            from anomaly_seg_ros.networks.refine_graph import append_refinement

            save_model_info(info, staging)
            info = append_refinement(staging, path, refine_in_graph, sml_stats, check=check)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    LOGGER.info("exported %s (%s, %dx%d, sha256 %s…)", path, precision, height, width, digest)
    return info


def _torch_export(head: AnomalyHead, probe: torch.Tensor, path: Path, opset: int) -> None:
    torch_export(head, (probe,), path, opset, [INPUT_NAME], list(OUTPUT_NAMES))


def _set_metadata(model: onnx.ModelProto, info: ModelInfo) -> None:
    """Record what the sidecar must agree with inside the graph itself."""
    values = {
        "num_classes": str(info.num_classes),
        "input_height": str(info.input_height),
        "input_width": str(info.input_width),
        "precision": info.precision,
        "producer": f"anomaly_seg_ros {__version__}",
    }
    del model.metadata_props[:]
    for key, value in values.items():
        model.metadata_props.add(key=key, value=value)


def require_parity(
    compare: Callable[[np.ndarray], Parity],
    onnx_path: Path,
    info: ModelInfo,
    tolerance: ParityTolerance,
    reference: str,
) -> None:
    """Run ``compare`` on the parity inputs; raise unless every one passes.

    :param compare: one normalized (1, 3, H, W) input → its :class:`Parity`.
    :param reference: what the graph is compared with, for the messages.
    :raises ModelError: a comparison fails or cannot run (the message names the quantity,
        its value and the option that changes the limit).
    """
    for image in parity_inputs(info.input_height, info.input_width):
        try:
            parity = compare(image)
        except Exception as error:  # e.g. an ONNX Runtime build without some fp16 kernels
            raise ModelError(
                f"parity of {onnx_path.name} ({info.precision}) could not be checked: "
                f"{str(error).splitlines()[0] if str(error) else type(error).__name__}; "
                "not writing it. Export where ONNX Runtime runs this graph, or pass "
                "parity=False (--no-parity-check) to write it unchecked"
            ) from error
        LOGGER.info(
            "parity: labels %.4f%%, max-logit error %.2e, distribution %.2e of the spread",
            100 * parity.label_agreement,
            parity.max_logit_error,
            parity.distribution_error,
        )
        problems = parity.problems(info.precision, tolerance)
        if problems:
            raise ModelError(
                f"ONNX Runtime disagrees with {reference} ({info.precision}): "
                f"{'; '.join(problems)}; not writing {onnx_path.name}"
            )
