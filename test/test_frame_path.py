"""A frame's path through the package: every call goes down the layers or stays within
one, never back up (a stage that calls back into the Detector, say, or a model fact that
reaches into the pipeline).

The path is traced with :func:`sys.setprofile` over one ``Detector.detect`` with both
drawings requested and the packing of the five output images, as the node and ``bag run``
do for a frame.
"""

from __future__ import annotations

import sys

import numpy as np

from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.detector import Detector
from anomaly_seg_ros.io.outputs import OUTPUT_TOPIC_NAMES, result_images

PACKAGE = "anomaly_seg_ros"
#: The package's layers, top first (a prefix of the dotted module name, first match wins).
LAYERS = (
    ("io", "io."),
    ("detector", "detector"),
    ("backends", "backends."),
    ("pipeline", "pipeline."),
    ("model", "model."),
    ("foundation", ""),  # errors, config, refinement_spec, atomic
)
RANK = {name: len(LAYERS) - index for index, (name, _) in enumerate(LAYERS)}


def layer(module: str) -> str:
    inner = module.removeprefix(f"{PACKAGE}.")
    return next(name for name, prefix in LAYERS if inner.startswith(prefix))


def trace_frame(detector: Detector, rgb: np.ndarray) -> list[tuple[str, str]]:
    """(caller module, callee module) of every call between two of the package's modules."""
    calls: list[tuple[str, str]] = []

    def profile(frame, event, _arg):  # type: ignore[no-untyped-def]
        if event != "call" or frame.f_back is None:
            return
        callee = frame.f_globals.get("__name__", "")
        caller = frame.f_back.f_globals.get("__name__", "")
        if callee.startswith(PACKAGE) and caller.startswith(PACKAGE) and callee != caller:
            calls.append((caller, callee))

    sys.setprofile(profile)
    try:
        result = detector.detect(rgb, outputs=("labels_color", "overlay"))
        result_images(result, OUTPUT_TOPIC_NAMES)
    finally:
        sys.setprofile(None)
    return calls


def test_a_frame_never_climbs_back_up_the_layers(tiny_model):
    config = DetectorConfig(boundary_suppression=True, dilated_smoothing=True, vde=True)
    rgb = np.random.default_rng(0).integers(0, 256, (96, 200, 3), dtype=np.uint8)
    with Detector.from_path(tiny_model, config) as detector:
        detector.detect(rgb, outputs=("labels_color", "overlay"))  # warm-up
        calls = trace_frame(detector, rgb)
    modules = {module for call in calls for module in call}
    # The reader sees the whole path: every layer, and the stages of the pipeline.
    assert {layer(module) for module in modules} == set(RANK)
    for stage in ("preprocess", "scores", "refine", "postprocess", "visualize"):
        assert f"{PACKAGE}.pipeline.{stage}" in modules
    climbs = sorted({call for call in calls if RANK[layer(call[1])] > RANK[layer(call[0])]})
    assert climbs == []


def test_the_tracer_sees_a_climb():
    """A stage calling back into the Detector (as a timing closure once did) is caught."""
    assert RANK[layer(f"{PACKAGE}.detector")] > RANK[layer(f"{PACKAGE}.pipeline.postprocess")]
    assert layer(f"{PACKAGE}.refinement_spec") == "foundation"
    assert layer(f"{PACKAGE}.io.outputs") == "io"
