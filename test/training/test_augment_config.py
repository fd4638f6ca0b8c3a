"""Augmentation on arrays and the YAML + override training config."""

import numpy as np
import pytest

from anomaly_seg_ros.errors import ConfigError
from training.augment import IGNORE_INDEX, Augmentation, random_crop
from training.config import TrainConfig, load_config


def _pair():
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :30] = 200  # left half bright
    label = np.zeros((40, 60), np.uint8)
    label[:, :30] = 7  # left half class 7
    return image, label


def test_augmentation_keeps_image_and_label_aligned():
    image, label = _pair()
    augment = Augmentation((32, 48), (0.8, 1.4), flip=True, color_jitter=0.0)
    for seed in range(10):
        out_image, out_label = augment(image, label, np.random.default_rng(seed))
        assert out_image.shape == (32, 48, 3) and out_label.shape == (32, 48)
        bright = out_image[..., 0] > 100
        # Wherever the label says class 7 the image is bright (nearest vs linear edges aside).
        agree = (bright == (out_label == 7)) | (out_label == IGNORE_INDEX)
        assert agree.mean() > 0.95


def test_augmentation_is_deterministic_for_a_generator_state():
    image, label = _pair()
    augment = Augmentation((32, 48), color_jitter=0.3)
    first = augment(image, label, np.random.default_rng(1))
    second = augment(image, label, np.random.default_rng(1))
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])


def test_crop_pads_small_inputs_with_ignore():
    image, label = _pair()
    out_image, out_label = random_crop(image, label, (64, 64), np.random.default_rng(0))
    assert out_label.shape == (64, 64)
    assert (out_label == IGNORE_INDEX).sum() == 64 * 64 - 40 * 60
    assert out_image[out_label == IGNORE_INDEX].max() == 0


def test_config_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.01\ncrop_size: [64, 96]\noptimizer: sgd\n")
    config = load_config(path, ["lr=0.5", "cities=[a, b]", "init_checkpoint=null"])
    assert config.lr == 0.5 and config.optimizer == "sgd"
    assert config.crop_size == (64, 96) and config.cities == ("a", "b")
    assert isinstance(config, TrainConfig)
    with pytest.raises(AttributeError):
        config.lr = 1.0  # frozen


@pytest.mark.parametrize(
    "override, match",
    [
        ("lrate=1", "unknown training setting"),
        ("optimizer=rmsprop", "optimizer"),
        ("crop_size=[8, 8]", "crop_size"),
        ("lr", "key=value"),
        ("batch_size=0", "batch_size"),
        ("precision=fp8", "precision"),
    ],
)
def test_bad_settings_raise_config_errors(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, [override])
