"""Style alignment of a pasted object to the driving scene, before AnomalyMix pastes it.

The paper aligns COCO objects with ISSA (a StyleGAN2 model; no public Cityscapes weights),
so that the network cannot find OoD pixels by their colour statistics alone. These are
training-free stand-ins plus a hook for an external model:

* ``none``      the object as it is;
* ``fda``       Fourier Domain Adaptation: the object's low-frequency amplitude spectrum is
                replaced by the scene's (``beta`` = half-width of the swapped window as a
                fraction of the shorter side), its phase (the shapes) is kept;
* ``reinhard``  Reinhard et al.: per-channel mean/std transfer in CIE L*a*b*;
* ``histogram`` per-channel histogram matching (RGB) of the object pixels to the scene;
* ``onnx``      an external ONNX model, object + scene in, styled object out
                (:class:`OnnxStyleModel`).

Every aligner maps ``(object_rgb (h, w, 3) uint8, mask (h, w) bool, scene_rgb (H, W, 3) uint8)``
to a styled ``(h, w, 3) uint8`` object; only pixels under the mask matter to the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from anomaly_seg_ros.errors import ConfigError, ModelError

StyleAligner = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

STYLE_METHODS = ("none", "fda", "reinhard", "histogram", "onnx")


def no_style(object_rgb: np.ndarray, mask: np.ndarray, scene_rgb: np.ndarray) -> np.ndarray:
    """The object unchanged."""
    return object_rgb


def _fill_outside(object_rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    # The box around the object holds COCO background; flatten it to the object's mean so
    # its edges and colours do not leak into the object's spectrum.
    filled = object_rgb.astype(np.float32)
    if mask.any() and not mask.all():
        filled[~mask] = filled[mask].mean(axis=0)
    return filled


def fda_style(
    object_rgb: np.ndarray, mask: np.ndarray, scene_rgb: np.ndarray, beta: float = 0.05
) -> np.ndarray:
    """Swap the centred low-frequency amplitude window with the scene's (FDA, Yang & Soatto).

    :param beta: window half-width / shorter side; 0 returns the object unchanged.
    """
    height, width = object_rgb.shape[:2]
    radius = int(np.floor(min(height, width) * beta))
    if radius < 1:
        return object_rgb
    source = _fill_outside(object_rgb, mask)
    target = cv2.resize(scene_rgb, (width, height), interpolation=cv2.INTER_AREA)
    source_fft = np.fft.fftshift(np.fft.fft2(source, axes=(0, 1)), axes=(0, 1))
    target_fft = np.fft.fftshift(np.fft.fft2(target.astype(np.float32), axes=(0, 1)), axes=(0, 1))
    amplitude, phase = np.abs(source_fft), np.angle(source_fft)
    cy, cx = height // 2, width // 2
    window = (slice(cy - radius, cy + radius + 1), slice(cx - radius, cx + radius + 1))
    amplitude[window] = np.abs(target_fft[window])
    mixed = np.fft.ifftshift(amplitude * np.exp(1j * phase), axes=(0, 1))
    styled = np.real(np.fft.ifft2(mixed, axes=(0, 1)))
    return np.clip(np.rint(styled), 0, 255).astype(np.uint8)


def reinhard_style(object_rgb: np.ndarray, mask: np.ndarray, scene_rgb: np.ndarray) -> np.ndarray:
    """Match the mean and standard deviation of each L*a*b* channel to the scene's."""
    if not mask.any():
        return object_rgb
    source = cv2.cvtColor(object_rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    target = cv2.cvtColor(scene_rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    target_pixels = target.reshape(-1, 3)
    source_mean, source_std = source[mask].mean(axis=0), source[mask].std(axis=0)
    target_mean, target_std = target_pixels.mean(axis=0), target_pixels.std(axis=0)
    styled = (source - source_mean) / np.maximum(source_std, 1e-3) * target_std + target_mean
    rgb = cv2.cvtColor(styled.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def histogram_style(object_rgb: np.ndarray, mask: np.ndarray, scene_rgb: np.ndarray) -> np.ndarray:
    """Map each RGB channel of the object pixels through the scene's quantile function."""
    if not mask.any():
        return object_rgb
    styled = object_rgb.copy()
    for channel in range(3):
        source_hist = np.bincount(object_rgb[..., channel][mask], minlength=256)
        target_hist = np.bincount(scene_rgb[..., channel].ravel(), minlength=256)
        source_cdf = np.cumsum(source_hist) / source_hist.sum()
        target_cdf = np.cumsum(target_hist) / target_hist.sum()
        # each level goes to the first scene level whose CDF reaches the object's CDF
        lookup = np.searchsorted(target_cdf, source_cdf - 1e-9, side="left").clip(0, 255)
        styled[..., channel] = lookup.astype(np.uint8)[object_rgb[..., channel]]
    return styled


def _to_nchw(rgb: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is not None and rgb.shape[:2] != size:
        rgb = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]


class OnnxStyleModel:
    """Hook for an external style-transfer network exported to ONNX (e.g. an ISSA generator).

    Contract of the graph: inputs ``object`` (1, 3, h, w) and ``scene`` (1, 3, H, W), float32
    RGB in [0, 1], and optionally ``mask`` (1, 1, h, w) float32 in {0, 1}; the first output is
    the styled object (1, 3, h, w) in [0, 1]. Static spatial sizes in the graph are honoured by
    resizing the inputs to them and the output back to the object's size.

    :param path: the ONNX file.
    :param providers: ONNX Runtime execution providers (default: CPU).
    :raises ModelError: file missing or inputs not named as above.
    """

    def __init__(self, path: str | Path, providers: list[str] | None = None) -> None:
        import onnxruntime  # deferred: only this aligner needs it

        if not Path(path).is_file():
            raise ModelError(f"style model {path} not found")
        self.session = onnxruntime.InferenceSession(
            str(path), providers=providers or ["CPUExecutionProvider"]
        )
        self.inputs = {item.name: item for item in self.session.get_inputs()}
        if not {"object", "scene"} <= set(self.inputs):
            raise ModelError(
                f"style model {path} has inputs {sorted(self.inputs)}; it needs inputs named "
                "'object' and 'scene' (and optionally 'mask'), see training/style.py"
            )

    def _static_size(self, name: str) -> tuple[int, int] | None:
        shape = self.inputs[name].shape
        if isinstance(shape[2], int) and isinstance(shape[3], int):
            return shape[2], shape[3]
        return None

    def __call__(
        self, object_rgb: np.ndarray, mask: np.ndarray, scene_rgb: np.ndarray
    ) -> np.ndarray:
        object_size = self._static_size("object")
        feeds = {
            "object": _to_nchw(object_rgb, object_size),
            "scene": _to_nchw(scene_rgb, self._static_size("scene")),
        }
        if "mask" in self.inputs:
            mask_u8: np.ndarray = mask.astype(np.uint8)
            if object_size is not None and mask_u8.shape != object_size:
                mask_u8 = cv2.resize(mask_u8, object_size[::-1], interpolation=cv2.INTER_NEAREST)
            feeds["mask"] = mask_u8.astype(np.float32)[None, None]
        styled = self.session.run(None, feeds)[0][0].transpose(1, 2, 0)
        styled = np.clip(np.rint(styled * 255.0), 0, 255).astype(np.uint8)
        if styled.shape[:2] != object_rgb.shape[:2]:
            size = (object_rgb.shape[1], object_rgb.shape[0])
            styled = cv2.resize(styled, size, interpolation=cv2.INTER_LINEAR)
        return styled


def create_style_aligner(
    method: str, beta: float = 0.05, model_path: str | Path | None = None
) -> StyleAligner:
    """The aligner called ``method``.

    :param method: one of :data:`STYLE_METHODS`.
    :param beta: FDA window size (``fda`` only).
    :param model_path: ONNX style model (``onnx`` only).
    :raises ConfigError: unknown method, bad beta, or ``onnx`` without a model path.
    """
    if method == "none":
        return no_style
    if method == "fda":
        if not 0.0 <= beta <= 0.5:
            raise ConfigError(f"FDA beta must lie in [0, 0.5], got {beta}")
        return lambda obj, mask, scene: fda_style(obj, mask, scene, beta=beta)
    if method == "reinhard":
        return reinhard_style
    if method == "histogram":
        return histogram_style
    if method == "onnx":
        if model_path is None:
            raise ConfigError("style method 'onnx' needs a model path (--style-model)")
        return OnnxStyleModel(model_path)
    raise ConfigError(f"style method {method!r} unknown; choose one of {STYLE_METHODS}")
