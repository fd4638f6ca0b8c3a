"""Test-session isolation: a private ROS domain and localhost-only discovery."""

import os
import random
import subprocess
import uuid

# Set before any rclpy import so that every node a test starts (in-process or as a
# subprocess inheriting the environment) talks only to this test session.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 101)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")

import numpy as np
import pytest

CLASS_NAMES = tuple(f"class{i}" for i in range(19))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory):
    """A small random DeepLabv3+ (MobileNetV2 ×0.25) exported once per session: 64×128.

    :return: path of the ``.onnx`` file (sidecar beside it).
    """
    torch = pytest.importorskip("torch")
    from anomaly_seg_ros.networks import create_network
    from anomaly_seg_ros.networks.export import export_onnx

    torch.manual_seed(0)
    network = create_network("mobilenetv2", num_classes=19, output_stride=16, width_mult=0.25)
    path = tmp_path_factory.mktemp("tiny_model") / "tiny.onnx"
    export_onnx(network, path, (64, 128), CLASS_NAMES)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (or, failing that, a 2 MiB loop-mounted ext4 image)."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    tried = []
    for command in (
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        None,
    ):
        if command is None:
            image = tmp_path / "disk.img"
            subprocess.run(["truncate", "-s", "2M", str(image)], check=True)
            made = subprocess.run(["mkfs.ext4", "-q", str(image)], capture_output=True, text=True)
            if made.returncode != 0:
                tried.append(f"mkfs.ext4: {made.stderr.strip()}")
                continue
            command = ["mount", "-o", "loop", str(image), str(mount)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode == 0:
            break
        tried.append(f"{' '.join(command[:3])}: {done.stderr.strip()}")
    else:
        pytest.skip(f"cannot mount a small file system here: {'; '.join(tried)}")
    yield mount
    # Lazy: a writer of the failed test may still hold a file there; detach regardless.
    subprocess.run(["umount", "-l", str(mount)], check=False)
