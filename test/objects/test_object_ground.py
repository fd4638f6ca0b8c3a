"""Camera model, mount and ground projection against exact ground truth."""

import math

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.objects import (
    CameraInfoError,
    CameraMount,
    camera_model_from_info,
    camera_size_problem,
    mount_problem,
)
from anomaly_seg_ros.objects.camera import pinhole, undistorted_rays
from anomaly_seg_ros.objects.ground import GroundProjector

K = [800.0, 0.0, 1023.5, 0.0, 800.0, 511.5, 0.0, 0.0, 1.0]
MOUNT = CameraMount(x=1.2, y=0.1, z=1.5, roll=0.0, pitch=math.radians(3.0), yaw=0.0)


def _project(camera, mount, points):
    """Vehicle points → distorted pixels with OpenCV's own forward model."""
    rotation = mount.optical_rotation()  # optical → vehicle
    optical = (np.asarray(points, np.float64) - mount.origin) @ rotation
    rvec = np.zeros(3)
    tvec = np.zeros(3)
    if camera.distortion_model == "equidistant":
        pixels, _ = cv2.fisheye.projectPoints(
            optical.reshape(-1, 1, 3), rvec, tvec, camera.k, np.asarray(camera.d)
        )
    else:
        pixels, _ = cv2.projectPoints(optical, rvec, tvec, camera.k, np.asarray(camera.d))
    return pixels.reshape(-1, 2)


def test_pinhole_ground_point_round_trip_is_exact():
    camera = camera_model_from_info(K, [], 2048, 1024, "")
    projector = GroundProjector(camera, MOUNT)
    truth = np.array([[5.0, 2.0, 0.0], [20.0, -3.5, 0.0], [60.0, 0.5, 0.0], [90.0, 8.0, 0.0]])
    pixels = projector.project(truth)
    # The analytic pinhole for a point straight ahead: row = cy + f·tan(atan(h/d) − pitch).
    ahead = projector.project(np.array([[MOUNT.x + 20.0, MOUNT.y, 0.0]]))[0]
    below = math.atan2(MOUNT.z, 20.0) - MOUNT.pitch
    assert ahead[0] == pytest.approx(1023.5, abs=1e-9)
    assert ahead[1] == pytest.approx(511.5 + 800.0 * math.tan(below), abs=1e-9)
    points, valid = projector.ground_points(pixels)
    assert valid.all()
    # float64 all the way: agreement to micrometres at 90 m
    np.testing.assert_allclose(points, truth, atol=1e-6)


@pytest.mark.parametrize(
    ("model", "coefficients"),
    [
        ("plumb_bob", [-0.28, 0.07, 0.0005, -0.0003, 0.0]),
        ("rational_polynomial", [-0.2, 0.05, 0.0004, 0.0002, 0.0, 0.1, 0.0, 0.0]),
        ("equidistant", [-0.02, 0.003, 0.0, 0.0]),
    ],
)
def test_distortion_round_trip(model, coefficients):
    camera = camera_model_from_info(K, coefficients, 2048, 1024, model)
    mount = CameraMount(0.0, 0.0, 1.6, 0.02, math.radians(5.0), math.radians(4.0))
    truth = np.array([[6.0, 3.0, 0.0], [12.0, -4.0, 0.0], [30.0, 1.0, 0.0], [45.0, -6.0, 0.0]])
    pixels = _project(camera, mount, truth)
    points, valid = GroundProjector(camera, mount).ground_points(pixels)
    assert valid.all()
    # undistortion iterates to 1e-10 (normalised units): the ground point within a
    # millimetre per 10 m of range, far below a pixel's footprint
    error = np.linalg.norm(points - truth, axis=1)
    assert np.all(error < 1e-4 * np.hypot(truth[:, 0], truth[:, 1])), error


def test_rays_at_and_above_the_horizon_give_no_point():
    camera = pinhole(500.0, 255.5, 127.5, 512, 256)
    mount = CameraMount(0.0, 0.0, 1.5, 0.0, 0.0, 0.0)  # level: the horizon is row 127.5
    _, valid = GroundProjector(camera, mount).ground_points(
        np.array([[100.0, 127.5], [100.0, 20.0], [100.0, 200.0]])
    )
    assert valid.tolist() == [False, False, True]
    projector = GroundProjector(camera, mount, max_range_m=50.0)
    far = projector.project(np.array([[80.0, 0.0, 0.0]]))
    assert not projector.ground_points(far)[1][0]


def test_position_and_uncertainty_of_a_frontal_box():
    camera = pinhole(1000.0, 1023.5, 511.5, 2048, 1024)
    mount = CameraMount(0.0, 0.0, 1.5, 0.0, 0.0, 0.0)
    projector = GroundProjector(camera, mount, pixel_sigma=1.0, pitch_sigma_deg=0.0)
    # The front edge of a 1 m wide box 20 m ahead, 2 m to the left.
    edge = np.stack([np.linspace(1.5, 2.5, 41) * 0 + 20.0, np.linspace(1.5, 2.5, 41)], 1)
    pixels = projector.project(np.concatenate([edge, np.zeros((41, 1))], axis=1))
    position = projector.position(pixels)
    assert position is not None
    assert position.forward_m == pytest.approx(20.0, abs=1e-6)
    assert position.left_m == pytest.approx(2.0, abs=1e-6)
    assert position.lateral_extent_m == pytest.approx(1.0, abs=1e-6)
    assert position.range_m == pytest.approx(math.hypot(20.0, 2.0), abs=1e-6)
    assert position.points.shape == (32, 3)
    # σ = (h² + d²)/h · (1 px / f): one pixel at 20 m is ~0.27 m; it grows as d²
    distance = math.hypot(20.0, 2.0)
    assert position.range_sigma_m == pytest.approx((1.5**2 + distance**2) / 1.5 / 1000.0)
    near = projector.range_sigma(np.array([[5.0, 0.0, 0.0]]))[0]
    assert near < position.range_sigma_m / 10


def test_mount_rotation_matches_tf2_convention():
    # yaw 90°: the camera looks to the left (+y); its optical axis is body x
    mount = CameraMount(0.0, 0.0, 1.0, 0.0, 0.0, math.pi / 2)
    np.testing.assert_allclose(mount.rotation()[:, 0], [0.0, 1.0, 0.0], atol=1e-12)
    # positive pitch looks down
    down = CameraMount(0.0, 0.0, 1.0, 0.0, 0.3, 0.0)
    assert down.rotation()[2, 0] < 0
    # optical z (forward) is body x, optical y (down) is body -z
    level = CameraMount(0.0, 0.0, 1.0, 0.0, 0.0, 0.0)
    np.testing.assert_allclose(level.optical_rotation() @ [0, 0, 1], [1, 0, 0])
    np.testing.assert_allclose(level.optical_rotation() @ [0, 1, 0], [0, 0, -1])


@pytest.mark.parametrize(
    ("k", "d", "size", "model", "words"),
    [
        ([0.0] * 9, [], (640, 480), "", "focal"),
        ([math.nan, 0, 320, 0, 500, 240, 0, 0, 1], [], (640, 480), "", "NaN"),
        ([500, 0, 320, 0, 500, 240, 0, 0, 1], [], (0, 480), "", "size"),
        ([500, 0, 900, 0, 500, 240, 0, 0, 1], [], (640, 480), "", "principal point"),
        ([500, 0, 320, 0, 500, 240, 0, 0, 1], [0.1] * 5, (640, 480), "mystery", "mystery"),
        ([500, 0, 320, 0, 500, 240, 0, 0, 1], [0.1] * 3, (640, 480), "plumb_bob", "5"),
        ([500, 0, 320, 0, 500, 240, 0, 0, 1], [0.1] * 5, (640, 480), "", "no distortion"),
    ],
)
def test_bad_camera_info_is_refused_with_the_field_named(k, d, size, model, words):
    with pytest.raises(CameraInfoError, match=words):
        camera_model_from_info(k, d, size[0], size[1], model)


def test_size_and_mount_problems():
    camera = pinhole(500.0, 319.5, 239.5, 640, 480)
    assert camera_size_problem(camera, 640, 480) is None
    assert "1280x960" in (camera_size_problem(camera, 1280, 960) or "")
    assert mount_problem(MOUNT) is None
    assert "below the ground" in (mount_problem(CameraMount(0, 0, -0.2, 0, 0, 0)) or "")
    assert "sky" in (mount_problem(CameraMount(0, 0, 1.5, 0, -1.2, 0)) or "")
    assert "NaN" in (mount_problem(CameraMount(0, 0, math.nan, 0, 0, 0)) or "")


def test_skewless_fast_path_matches_opencv():
    camera = camera_model_from_info(K, [0.0] * 5, 2048, 1024, "plumb_bob")
    pixels = np.array([[0.0, 0.0], [2047.0, 1023.0], [1000.0, 700.0]])
    expected = cv2.undistortPoints(pixels.reshape(-1, 1, 2), camera.k, None).reshape(-1, 2)
    np.testing.assert_allclose(undistorted_rays(camera, pixels), expected, atol=1e-12)


def test_overhanging_parts_do_not_widen_or_move_the_contact():
    """An animal: legs on the ground at 15 m (y −0.3 … 0.3), a head sticking out to the left
    at 0.5 m height. The head's lowest pixels are not ground contact: their rays meet the
    road 7 m behind it and would widen the object to the left."""
    camera = pinhole(1000.0, 1023.5, 511.5, 2048, 1024)
    mount = CameraMount(0.0, 0.0, 1.5, 0.0, 0.0, 0.0)
    projector = GroundProjector(camera, mount)
    legs = np.stack([np.full(21, 15.0), np.linspace(-0.3, 0.3, 21), np.zeros(21)], 1)
    head = np.stack([np.full(11, 15.0), np.linspace(0.35, 0.9, 11), np.full(11, 0.5)], 1)
    pixels = projector.project(np.concatenate([legs, head]))
    position = projector.position(pixels)
    assert position is not None
    assert position.forward_m == pytest.approx(15.0, abs=1e-6)
    assert position.lateral_extent_m == pytest.approx(0.6, abs=1e-6)
    assert position.left_m == pytest.approx(0.0, abs=1e-6)
    assert np.all(position.points[:, 0] < 15.0 + 1.5 + 1e-3)
