"""The JSON sidecar that travels with every exported model.

One exported ONNX file ``model.onnx`` has its sidecar ``model.json`` beside it. The
sidecar says what the graph expects and emits, so every backend and the Detector can
check a model before the first frame.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.model.classes import Color
from anomaly_seg_ros.model.graph_refinement import GraphRefinement
from anomaly_seg_ros.model.summary import INPUT_NAME, OUTPUT_NAMES, REFINED_SCORE_NAME

SIDECAR_FORMAT = "anomaly_seg_ros/model"
SIDECAR_VERSION = 1

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Named input normalisations, (mean, std) on RGB scaled to [0, 1]: the network sees
#: ``(x/255 − mean) / std``. ``imagenet``: ImageNet mean/std (torchvision, VainF, NVIDIA);
#: ``unit``: RGB in [0, 1] as it is; ``raw``: RGB in 0 … 255 (std 1/255).
NORMALIZATION_PRESETS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "unit": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "raw": ((0.0, 0.0, 0.0), (1.0 / 255.0, 1.0 / 255.0, 1.0 / 255.0)),
}


@dataclass(frozen=True)
class ModelInfo:
    """What a model expects and emits.

    :param class_names: the semantic classes, index = train ID.
    :param input_height: network input height in pixels (static shape).
    :param input_width: network input width in pixels.
    :param mean: per-channel mean, applied to RGB values scaled to [0, 1].
    :param std: per-channel standard deviation, same scale.
    :param channel_order: ``"RGB"`` (all supported checkpoints are RGB).
    :param align_corners: bilinear upsampling convention of the network.
    :param precision: ``"fp32"`` or ``"fp16"``: the precision of the graph's body.
    :param architecture: how to rebuild the torch network (name, backbone, stride...).
    :param provenance: free-form record of where the model came from.
    :param class_colors: RGB colour per class for the colour labels; empty = the
        Cityscapes fallback (:func:`~anomaly_seg_ros.model.classes.default_class_colors`).
    :param graph_refinement: the score + refinement the graph computes as its extra output
        :data:`REFINED_SCORE_NAME`, or None (the graph emits the logit summary only).
    """

    class_names: tuple[str, ...]
    input_height: int
    input_width: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channel_order: str = "RGB"
    align_corners: bool = False
    precision: str = "fp32"
    architecture: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    class_colors: tuple[Color, ...] = ()
    graph_refinement: GraphRefinement | None = None

    @property
    def precision_label(self) -> str:
        """The precision as logs show it: ``int8 QDQ`` for a quantised graph (its sidecar
        records the quantization; :attr:`precision` stays the fp32 of its inputs and
        outputs), else :attr:`precision`."""
        return "int8 QDQ" if "quantization" in self.provenance else self.precision

    @property
    def output_names(self) -> tuple[str, ...]:
        """The graph's outputs: the logit summary, then the refined score if it has one."""
        extra = (REFINED_SCORE_NAME,) if self.graph_refinement is not None else ()
        return (*OUTPUT_NAMES, *extra)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the network input."""
        return self.input_height, self.input_width

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["class_names"] = list(self.class_names)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        data["class_colors"] = [list(color) for color in self.class_colors]
        if not self.class_colors:
            del data["class_colors"]  # sidecars without colours stay as they were
        if self.graph_refinement is None:
            del data["graph_refinement"]  # sidecars without it stay as they were
        else:
            data["graph_refinement"] = self.graph_refinement.to_json()
        return {
            "format": SIDECAR_FORMAT,
            "version": SIDECAR_VERSION,
            "input_name": INPUT_NAME,
            "output_names": list(self.output_names),
            **data,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "<dict>") -> ModelInfo:
        """Build from a sidecar's JSON content.

        :raises ModelError: not a sidecar object, wrong version, missing or bad fields.
        """
        if not isinstance(data, dict):
            raise ModelError(
                f"{source}: not an anomaly_seg_ros model sidecar (a JSON "
                f"{type(data).__name__}, expected an object); re-export the model"
            )
        if data.get("format") != SIDECAR_FORMAT:
            raise ModelError(
                f"{source}: not an anomaly_seg_ros model sidecar "
                f"(format {data.get('format')!r}, expected {SIDECAR_FORMAT!r})"
            )
        if data.get("version") != SIDECAR_VERSION:
            raise ModelError(
                f"{source}: sidecar version {data.get('version')!r} is not supported "
                f"(this package reads version {SIDECAR_VERSION}); re-export the model"
            )
        try:
            info = cls(
                class_names=tuple(str(name) for name in data["class_names"]),
                input_height=int(data["input_height"]),
                input_width=int(data["input_width"]),
                mean=tuple(float(v) for v in data["mean"]),  # type: ignore[arg-type]
                std=tuple(float(v) for v in data["std"]),  # type: ignore[arg-type]
                channel_order=str(data["channel_order"]),
                align_corners=bool(data["align_corners"]),
                precision=str(data["precision"]),
                architecture=dict(data.get("architecture", {})),
                provenance=dict(data.get("provenance", {})),
                class_colors=tuple(
                    (int(r), int(g), int(b)) for r, g, b in data.get("class_colors", ())
                ),
                graph_refinement=(
                    None
                    if data.get("graph_refinement") is None
                    else GraphRefinement.from_json(data["graph_refinement"], source)
                ),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(f"{source}: malformed sidecar ({error!r})") from error
        info.validate(source)
        return info

    def validate(self, source: str = "<model>") -> None:
        """Raise :class:`ModelError` if the fields are inconsistent."""
        if self.num_classes < 2:
            raise ModelError(f"{source}: needs at least 2 classes, got {self.num_classes}")
        if self.num_classes > 255:
            raise ModelError(f"{source}: at most 255 classes fit a uint8 label map")
        if self.input_height < 16 or self.input_width < 16:
            raise ModelError(f"{source}: input size {self.input_size} is too small")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ModelError(f"{source}: mean/std must have 3 entries, std > 0")
        if not all(math.isfinite(value) for value in (*self.mean, *self.std)):
            raise ModelError(
                f"{source}: mean {list(self.mean)} / std {list(self.std)} must be finite "
                "numbers; re-export the model"
            )
        if self.channel_order not in ("RGB", "BGR"):
            raise ModelError(f"{source}: channel_order must be RGB or BGR")
        if self.precision not in ("fp32", "fp16"):
            raise ModelError(f"{source}: precision must be fp32 or fp16")
        if self.class_colors and len(self.class_colors) != self.num_classes:
            raise ModelError(
                f"{source}: {len(self.class_colors)} class colours for {self.num_classes} "
                "classes; give one RGB triple per class or none"
            )
        if any(not 0 <= value <= 255 for color in self.class_colors for value in color):
            raise ModelError(f"{source}: class colours must be RGB values in 0..255")


def sidecar_path(model_path: str | Path) -> Path:
    """The sidecar of ``model.onnx`` (or ``model.engine``) is ``model.json`` beside it."""
    return Path(model_path).with_suffix(".json")


def load_model_info(model_path: str | Path) -> ModelInfo:
    """Read and check the sidecar belonging to ``model_path``.

    :raises ModelError: the sidecar is missing, unreadable or inconsistent.
    """
    path = sidecar_path(model_path)
    if not path.is_file():
        raise ModelError(
            f"model sidecar {path} not found: every exported model needs its JSON sidecar "
            "beside it (written by `anomaly-seg export`)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{path}: cannot read sidecar, not a JSON file ({error})") from error
    return ModelInfo.from_json(data, source=str(path))


def save_model_info(info: ModelInfo, model_path: str | Path) -> Path:
    """Write the sidecar for ``model_path`` and return its path."""
    info.validate(str(model_path))
    path = sidecar_path(model_path)
    path.write_text(json.dumps(info.to_json(), indent=2) + "\n")
    return path
