"""Helpers shared by the exporters (network + head, refinement graph): torch → ONNX."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from anomaly_seg_ros.errors import ModelError


def parity_inputs(height: int, width: int) -> list[np.ndarray]:
    """A noise image and a smooth gradient image, normalized like real inputs."""
    generator = np.random.default_rng(0)
    noise = generator.standard_normal((1, 3, height, width)).astype(np.float32)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    smooth = np.stack([np.sin(xs / 17.0), np.cos(ys / 23.0), np.sin((xs + ys) / 31.0)])
    return [noise, (2.0 * smooth[None]).astype(np.float32)]


def torch_export(
    module: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    path: Path,
    opset: int,
    input_names: Sequence[str],
    output_names: Sequence[str],
) -> None:
    """Export ``module`` on ``inputs`` (static shapes) with the dynamo exporter, quietly.

    :param path: the ``.onnx`` to write (weights inside, no external data).
    """
    # The exporter's optimisation passes log every folded constant and rewrite at INFO,
    # and torch warns about torchvision ops we never use.
    noisy = [logging.getLogger(name) for name in ("onnx_ir", "onnxscript", "torch.onnx")]
    levels = [logger.level for logger in noisy]
    for logger in noisy:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                inputs,
                dynamo=True,
                opset_version=opset,
                input_names=list(input_names),
                output_names=list(output_names),
                external_data=False,
                verbose=False,
            )
        if program is None:  # only the legacy (dynamo=False) exporter returns None
            raise ModelError(f"torch.onnx.export returned no program for {path}")
        program.save(os.fspath(path))
    finally:
        for logger, level in zip(noisy, levels):
            logger.setLevel(level)
