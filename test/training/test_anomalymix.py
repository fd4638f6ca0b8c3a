"""AnomalyMix on a bank built from the COCO-format fixture."""

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.errors import ConfigError
from training.anomalymix import (
    AnomalyMix,
    AnomalyMixConfig,
    MixedSample,
    ood_aware_crop,
    save_mix_grid,
)
from training.coco_subset import ObjectBank
from training.losses import OOD_LABEL, VOID_LABEL


@pytest.fixture
def frame() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    image = np.clip(rng.normal((70, 80, 95), 10, (256, 512, 3)), 0, 255).astype(np.uint8)
    labels = np.zeros((256, 512), np.uint8)  # road below, sky (10) above, some void
    labels[:100] = 10
    labels[:10, :50] = VOID_LABEL
    return image, labels


def _mix(bank_dir, **changes) -> AnomalyMix:
    return AnomalyMix(ObjectBank(bank_dir), AnomalyMixConfig(**changes))


def test_paste_labels_exactly_the_changed_object(object_bank_dir, frame):
    image, labels = frame
    before = (image.copy(), labels.copy())
    mix = _mix(object_bank_dir, probability=1.0, style="none")
    for seed in range(10):
        sample = mix(image, labels, np.random.default_rng(seed))
        assert np.array_equal(image, before[0]) and np.array_equal(labels, before[1])
        x, y, w, h = sample.box
        ood = sample.labels == OOD_LABEL
        assert ood.any() and not ood[: max(y, 0)].any() and not ood[y + h :].any()
        assert not ood[:, :x].any() and not ood[:, x + w :].any()
        changed = np.any(sample.image != image, axis=2)
        assert not changed[~ood].any()  # nothing outside the object moved
        assert np.array_equal(sample.labels[~ood], labels[~ood])
        longer = max(w, h) / 256
        assert 0.1 - 0.01 <= longer <= 0.5 + 0.01


def test_pasted_labels_are_the_nearest_resized_object_mask(object_bank_dir, frame):
    """The pasted OoD pixels are the bank mask resized by nearest neighbour: no ring of the
    object's own background pasted and labelled OoD (a linear resize + ``> 0`` grew it)."""
    image, labels = frame
    mix = _mix(object_bank_dir, probability=1.0, style="none")
    for seed in range(40):
        rng = np.random.default_rng(seed)
        index = int(rng.integers(len(mix.bank)))
        sample = mix.paste(image, labels, index, np.random.default_rng(seed))
        x, y, w, h = sample.box
        _, object_mask = mix.bank.load(index)
        expected = cv2.resize(
            object_mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST
        )
        pasted = sample.labels[y : y + h, x : x + w] == OOD_LABEL
        assert np.array_equal(pasted, expected > 0)


def test_probability_controls_how_often(object_bank_dir, frame):
    image, labels = frame
    rng = np.random.default_rng(0)
    never = _mix(object_bank_dir, probability=0.0, style="none")
    assert all(never(image, labels, rng).box is None for _ in range(50))
    mix = _mix(object_bank_dir, probability=0.1, style="none")
    hits = sum(mix(image, labels, rng).box is not None for _ in range(600))
    assert 35 <= hits <= 85  # binomial(600, 0.1): mean 60, sd 7.3


def test_style_alignment_pulls_object_towards_scene(object_bank_dir, frame):
    image, labels = frame
    scene_mean = image.reshape(-1, 3).mean(0)
    gaps = {}
    for style in ("none", "reinhard", "histogram", "fda"):
        mix = _mix(object_bank_dir, probability=1.0, style=style)
        sample = mix.paste(image, labels, 0, np.random.default_rng(1))  # the red dog
        pasted = sample.image[sample.labels == OOD_LABEL].mean(0)
        gaps[style] = float(np.abs(pasted - scene_mean).mean())
    assert gaps["none"] > 50
    for style in ("reinhard", "histogram", "fda"):
        assert gaps[style] < 0.3 * gaps["none"], gaps


def test_ood_aware_crop_always_contains_the_object(object_bank_dir, frame):
    image, labels = frame
    mix = _mix(object_bank_dir, probability=1.0, style="none", size_range=(0.2, 0.4))
    for seed in range(30):
        rng = np.random.default_rng(seed)
        sample = mix(image, labels, rng)
        crop_image, crop_labels = ood_aware_crop(
            sample.image, sample.labels, (128, 160), sample.box, rng
        )
        assert crop_image.shape == (128, 160, 3) and crop_labels.shape == (128, 160)
        assert (crop_labels == OOD_LABEL).sum() == (sample.labels == OOD_LABEL).sum()


def test_ood_aware_crop_large_object_and_padding(frame):
    image, labels = frame
    labels = labels.copy()
    labels[20:220, 100:400] = OOD_LABEL  # 200 x 300 object, larger than the crop
    for seed in range(20):
        _, crop = ood_aware_crop(
            image, labels, (64, 64), (100, 20, 300, 200), np.random.default_rng(seed)
        )
        assert np.all(crop == OOD_LABEL)  # the crop stays inside the object's span
    small_image, small_labels = image[:50, :60], labels[:50, :60]
    padded_image, padded_labels = ood_aware_crop(
        small_image, small_labels, (64, 80), None, np.random.default_rng(0)
    )
    assert padded_image.shape == (64, 80, 3)
    assert np.all(padded_labels[50:] == VOID_LABEL) and np.all(padded_labels[:, 60:] == VOID_LABEL)


def test_grid_png(object_bank_dir, frame, tmp_path):
    image, labels = frame
    mix = _mix(object_bank_dir, probability=1.0)
    rng = np.random.default_rng(0)
    samples = [mix(image, labels, rng) for _ in range(5)] + [MixedSample(image, labels, None)]
    path = save_mix_grid(tmp_path / "grid.png", samples, columns=4)
    grid = cv2.imread(str(path))
    assert grid.shape == (2 * 240, 4 * 480, 3)
    magenta = np.all(grid == (255, 0, 255), axis=2)  # BGR == RGB for magenta
    assert magenta[:240].any() and not magenta[240:, 480:].any()  # outlines on mixed cells only


def test_config_validation():
    with pytest.raises(ConfigError):
        AnomalyMixConfig(probability=1.5)
    with pytest.raises(ConfigError):
        AnomalyMixConfig(size_range=(0.5, 0.1))
    with pytest.raises(ConfigError, match="fda"):
        AnomalyMixConfig(style="issa")
