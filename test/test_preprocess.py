"""Preprocessing against the per-channel formulation it replaced (split, then resize)."""

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.model.sidecar import ModelInfo
from anomaly_seg_ros.pipeline import preprocess


def split_then_resize(rgb: np.ndarray, info: ModelInfo) -> np.ndarray:
    """Each channel extracted at camera size, resized on its own, then normalized."""
    height, width = info.input_size
    out = np.empty((1, 3, height, width), np.float32)
    order = (2, 1, 0) if info.channel_order == "BGR" else (0, 1, 2)
    for index, source in enumerate(order):
        channel = np.ascontiguousarray(rgb[..., source])
        if channel.shape != (height, width):
            channel = preprocess.resize_smooth(channel, (height, width))
        scale = 1.0 / (255.0 * info.std[index])
        offset = -info.mean[index] / info.std[index]
        cv2.addWeighted(channel, scale, channel, 0.0, offset, dst=out[0, index], dtype=cv2.CV_32F)
    return out


@pytest.mark.parametrize("camera", [(64, 128), (90, 200), (37, 53), (256, 512), (131, 97)])
@pytest.mark.parametrize("channel_order", ["RGB", "BGR"])
def test_resize_before_split_is_the_same_input(rng, camera, channel_order):
    info = ModelInfo(tuple(f"c{i}" for i in range(3)), 64, 128, channel_order=channel_order)
    rgb = rng.integers(0, 256, size=(*camera, 3), dtype=np.uint8)
    expected = split_then_resize(rgb, info)
    np.testing.assert_array_equal(preprocess.to_network_input(rgb, info), expected)
    out = np.empty_like(expected)
    assert preprocess.to_network_input(rgb, info, out) is out
    np.testing.assert_array_equal(out, expected)


def test_resize_labels_takes_colour_pictures_too(rng):
    labels = rng.integers(0, 19, size=(40, 60)).astype(np.uint8)
    colours = np.stack([labels, labels * 2, labels * 3], axis=-1)
    resized = preprocess.resize_labels(labels, (97, 130))
    np.testing.assert_array_equal(
        preprocess.resize_labels(colours, (97, 130)),
        np.stack([resized, resized * 2, resized * 3], axis=-1),
    )
    assert preprocess.resize_labels(colours, (40, 60)) is colours


def test_largest_image_is_one_limit():
    """An 8192×4096 camera passes every check; one more row fails them all alike."""
    from anomaly_seg_ros.errors import ConfigError, InputError
    from anomaly_seg_ros.io.image import RawImage, image_view
    from anomaly_seg_ros.node_settings import NodeSettings

    assert preprocess.MAX_IMAGE_PIXELS == 8192 * 4096
    camera = np.broadcast_to(np.zeros(3, np.uint8), (4096, 8192, 3))  # no memory behind it
    assert preprocess.check_rgb(camera) is camera
    too_tall = np.broadcast_to(np.zeros(3, np.uint8), (4097, 8192, 3))
    with pytest.raises(InputError, match="exceeds the limit of 33554432; 33554432 = 8192x4096"):
        preprocess.check_rgb(too_tall)
    with pytest.raises(InputError, match="exceeds the limit of 33554432"):
        image_view(RawImage("mono8", 4097, 8192, 8192, False, b""))
    with pytest.raises(InputError, match="raise parameter max_image_pixels"):
        image_view(RawImage("mono8", 100, 100, 100, False, b""), max_pixels=9_999)
    assert NodeSettings(max_image_pixels=preprocess.MAX_IMAGE_PIXELS).max_image_pixels
    with pytest.raises(ConfigError, match="max_image_pixels 33554433 out of range"):
        NodeSettings(max_image_pixels=preprocess.MAX_IMAGE_PIXELS + 1)
