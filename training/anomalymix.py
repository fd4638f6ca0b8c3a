"""AnomalyMix: paste (style-aligned) bank objects into driving frames as OoD pixels.

With probability ``probability`` per sample, one object of an :class:`ObjectBank` is
style-aligned to the frame (:mod:`training.style`), scaled, and pasted at a random place;
its pixels get the OoD label 254. :func:`ood_aware_crop` then cuts the training crop so
that it contains the pasted object (COCO-DAG's OoD-aware cropping), because a random crop
of a large frame would often miss a small object and waste the sample.

Arrays: ``image`` (H, W, 3) uint8 RGB, ``labels`` (H, W) uint8 train IDs (255 void).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from anomaly_seg_ros.errors import ConfigError
from training.coco_subset import ObjectBank
from training.losses import OOD_LABEL, VOID_LABEL
from training.style import STYLE_METHODS, StyleAligner, create_style_aligner

#: The scene is shrunk to this longer side before style statistics are taken (speed only;
#: means, histograms and low frequencies barely change).
STYLE_SCENE_SIDE = 512

Box = tuple[int, int, int, int]  # x, y, width, height


@dataclass(frozen=True)
class AnomalyMixConfig:
    """AnomalyMix settings.

    :param probability: chance that a sample gets an object (paper: 0.1).
    :param size_range: the pasted object's longer side, as a fraction of the frame's shorter
        side, drawn uniformly from this range.
    :param style: style alignment, one of :data:`training.style.STYLE_METHODS`.
    :param fda_beta: FDA window size.
    :param style_model: ONNX style model for ``style="onnx"``.
    """

    probability: float = 0.1
    size_range: tuple[float, float] = (0.1, 0.5)
    style: str = "fda"
    fda_beta: float = 0.05
    style_model: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ConfigError(f"AnomalyMix probability must be in [0, 1], got {self.probability}")
        low, high = self.size_range
        if not 0.0 < low <= high <= 1.0:
            raise ConfigError(
                f"size_range must satisfy 0 < low <= high <= 1, got {self.size_range}"
            )
        if self.style not in STYLE_METHODS:
            raise ConfigError(f"style {self.style!r} unknown; choose one of {STYLE_METHODS}")


@dataclass(frozen=True)
class MixedSample:
    """One frame after AnomalyMix; ``box`` is the pasted object's (x, y, w, h) or None."""

    image: np.ndarray
    labels: np.ndarray
    box: Box | None


class AnomalyMix:
    """Callable augmentation ``(image, labels, rng) -> MixedSample``.

    :param bank: the objects to paste.
    :param config: settings.
    :param aligner: overrides the aligner built from ``config.style`` (e.g. a shared model).
    """

    def __init__(
        self, bank: ObjectBank, config: AnomalyMixConfig, aligner: StyleAligner | None = None
    ) -> None:
        self.bank = bank
        self.config = config
        self.aligner = aligner or create_style_aligner(
            config.style, beta=config.fda_beta, model_path=config.style_model
        )

    def __call__(
        self, image: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> MixedSample:
        """Paste an object with probability ``config.probability``; inputs are not modified."""
        if rng.random() >= self.config.probability:
            return MixedSample(image, labels, None)
        return self.paste(image, labels, int(rng.integers(len(self.bank))), rng)

    def paste(
        self, image: np.ndarray, labels: np.ndarray, index: int, rng: np.random.Generator
    ) -> MixedSample:
        """Paste bank object ``index`` at a random size and place (always)."""
        object_rgb, object_mask = self.bank.load(index)
        height, width = labels.shape
        low, high = self.config.size_range
        longer = rng.uniform(low, high) * min(height, width)
        factor = longer / max(object_rgb.shape[:2])
        size_w = int(np.clip(round(object_rgb.shape[1] * factor), 1, width))
        size_h = int(np.clip(round(object_rgb.shape[0] * factor), 1, height))
        interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
        object_rgb = cv2.resize(object_rgb, (size_w, size_h), interpolation=interpolation)
        resized_mask = cv2.resize(
            object_mask.astype(np.uint8), (size_w, size_h), interpolation=cv2.INTER_NEAREST
        )
        mask = resized_mask > 0
        if not mask.any():  # a sliver shrunk to nothing: nothing to paste
            return MixedSample(image, labels, None)
        styled = self.aligner(object_rgb, mask, _style_scene(image))
        x = int(rng.integers(0, width - size_w + 1))
        y = int(rng.integers(0, height - size_h + 1))
        mixed_image, mixed_labels = image.copy(), labels.copy()
        window = (slice(y, y + size_h), slice(x, x + size_w))
        mixed_image[window][mask] = styled[mask]
        mixed_labels[window][mask] = OOD_LABEL
        return MixedSample(mixed_image, mixed_labels, (x, y, size_w, size_h))


def _style_scene(image: np.ndarray) -> np.ndarray:
    factor = STYLE_SCENE_SIDE / max(image.shape[:2])
    if factor >= 1:
        return image
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _window_start(length: int, crop: int, lo: int, hi: int, rng: np.random.Generator) -> int:
    """Start of a crop of ``crop`` px in ``length`` px that covers [lo, hi) if it can."""
    latest = length - crop
    if hi - lo <= crop:
        first, last = max(0, hi - crop), min(lo, latest)
    else:  # the object is longer than the crop: keep the crop inside the object's span
        first, last = max(0, lo), min(hi - crop, latest)
    return int(rng.integers(first, last + 1))


def ood_aware_crop(
    image: np.ndarray,
    labels: np.ndarray,
    crop_size: tuple[int, int],
    box: Box | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Random crop that contains ``box`` whole when it fits (else a crop inside its span).

    Frames smaller than the crop are padded (image 0, labels void) first.

    :param crop_size: (height, width) of the crop.
    :param box: (x, y, w, h) of the pasted object, or None for a uniform random crop.
    :return: (crop_h, crop_w, 3) image and (crop_h, crop_w) labels.
    """
    crop_h, crop_w = crop_size
    pad_h, pad_w = max(0, crop_h - labels.shape[0]), max(0, crop_w - labels.shape[1])
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)))
        labels = np.pad(labels, ((0, pad_h), (0, pad_w)), constant_values=VOID_LABEL)
    height, width = labels.shape
    x0, y0, w, h = box if box is not None else (0, 0, width, height)
    if box is None:
        top = int(rng.integers(0, height - crop_h + 1))
        left = int(rng.integers(0, width - crop_w + 1))
    else:
        top = _window_start(height, crop_h, y0, y0 + h, rng)
        left = _window_start(width, crop_w, x0, x0 + w, rng)
    window = (slice(top, top + crop_h), slice(left, left + crop_w))
    return image[window], labels[window]


def mix_preview(sample: MixedSample, cell_width: int = 480) -> np.ndarray:
    """One grid cell: the mixed frame with the OoD pixels outlined in magenta.

    :return: (h, cell_width, 3) uint8 RGB.
    """
    height, width = sample.labels.shape
    size = (cell_width, max(1, round(height * cell_width / width)))
    preview = cv2.resize(sample.image, size, interpolation=cv2.INTER_AREA)
    ood = cv2.resize(
        (sample.labels == OOD_LABEL).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST
    )
    contours, _ = cv2.findContours(ood, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(preview, contours, -1, (255, 0, 255), 2)
    return preview


def save_mix_grid(
    path: str | Path, samples: list[MixedSample], columns: int = 4, cell_width: int = 480
) -> Path:
    """Write a PNG grid of :func:`mix_preview` cells (row-major) for a quick look.

    :raises ConfigError: no samples.
    """
    if not samples:
        raise ConfigError("save_mix_grid needs at least one sample")
    cells = [mix_preview(sample, cell_width) for sample in samples]
    cell_h = max(cell.shape[0] for cell in cells)
    cells = [np.pad(c, ((0, cell_h - c.shape[0]), (0, 0), (0, 0))) for c in cells]
    rows = -(-len(cells) // columns)
    cells += [np.zeros_like(cells[0])] * (rows * columns - len(cells))
    grid = np.concatenate(
        [np.concatenate(cells[r * columns : (r + 1) * columns], axis=1) for r in range(rows)]
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m training.anomalymix``: save a grid of example mixes for a quick look."""
    import argparse

    from anomaly_seg_ros.datasets.cityscapes import CityscapesDataset

    parser = argparse.ArgumentParser(description="Save a PNG grid of AnomalyMix examples")
    parser.add_argument("--bank", required=True, help="object bank (training.coco_subset)")
    parser.add_argument("--data-root", required=True, help="Cityscapes-layout folder")
    parser.add_argument("--split", default="train")
    parser.add_argument("--out", default="anomalymix_grid.png")
    parser.add_argument(
        "--styles", default="none,fda,reinhard,histogram",
        help="comma-separated styles, one column each; every row pastes the same object at "
        "the same place into one frame",
    )  # fmt: skip
    parser.add_argument("--style-model", default=None, help="ONNX model for style onnx")
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--cell-width", type=int, default=320)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    frames = CityscapesDataset(args.data_root, args.split)
    bank = ObjectBank(args.bank)
    styles = [style.strip() for style in args.styles.split(",") if style.strip()]
    mixes = [
        AnomalyMix(
            bank, AnomalyMixConfig(probability=1.0, style=style, style_model=args.style_model)
        )
        for style in styles
    ]
    picks = np.random.default_rng(args.seed).choice(
        len(frames), min(args.rows, len(frames)), False
    )
    samples = [
        mix(*frames[int(index)], np.random.default_rng([args.seed, int(index)]))
        for index in picks
        for mix in mixes
    ]
    save_mix_grid(args.out, samples, len(styles), args.cell_width)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
