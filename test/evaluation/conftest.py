"""Shared fixtures of the evaluation tests: a small Fishyscapes-layout dataset."""

import cv2
import numpy as np
import pytest


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """Six 96×160 road-like frames with a bright square 'object' (label 1) and void."""
    root = tmp_path_factory.mktemp("fishyscapes")
    rng = np.random.default_rng(7)
    for index in range(6):
        rgb = np.full((96, 160, 3), (90, 90, 100), np.uint8)
        rgb[:40] = (120, 170, 230)
        rgb += rng.integers(0, 20, size=rgb.shape, dtype=np.uint8)
        label = np.zeros((96, 160), np.uint8)
        top, left = 45 + 5 * (index % 3), 20 + 20 * index
        size = 18 + 3 * index
        rgb[top : top + size, left : left + size] = (250, 30 + 30 * index, 200)
        label[top : top + size, left : left + size] = 1
        label[:6] = 255
        (root / "original").mkdir(exist_ok=True)
        (root / "labels").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "original" / f"{index:03d}.png"), rgb[..., ::-1])
        cv2.imwrite(str(root / "labels" / f"{index:03d}.png"), label)
    return root
