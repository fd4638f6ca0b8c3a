"""The object layer's and the camera mount's node parameters (no DDS)."""

from __future__ import annotations

import pytest

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.node_settings import NodeSettings, node_parameter_names
from anomaly_seg_ros.objects import CameraMount, ObjectSettings
from anomaly_seg_ros.ros.parameters import SPECS, descriptor, flatten, updated_settings


def test_every_object_setting_is_a_parameter_and_round_trips() -> None:
    settings = NodeSettings()
    values = flatten(settings)
    for name in ObjectSettings.__dataclass_fields__:
        assert f"object_{name}" in values and f"object_{name}" in SPECS
        assert f"object_{name}" in node_parameter_names()  # params files may hold it
    changed = updated_settings(settings, {"object_confirm_hits": 4, "object_max_age": 7})
    assert (changed.objects.confirm_hits, changed.objects.max_age) == (4, 7)
    assert settings.objects == ObjectSettings()  # frozen: the old snapshot is untouched
    assert descriptor("object_confirm_hits", 3).integer_range[0].to_value == 62


def test_invalid_object_settings_are_refused_with_the_field() -> None:
    with pytest.raises(ConfigError, match="confirm_hits"):
        updated_settings(NodeSettings(), {"object_confirm_hits": 9})  # > confirm_window 5
    with pytest.raises(ConfigError, match="read-only"):
        updated_settings(NodeSettings(), {"vehicle_frame": "odom"})


def test_mount_is_none_until_set_and_then_the_six_values() -> None:
    assert NodeSettings().camera_mount() is None
    settings = updated_settings(NodeSettings(), {"camera_z": 1.4, "camera_pitch": 0.05})
    assert settings.camera_mount() == CameraMount(0.0, 0.0, 1.4, 0.0, 0.05, 0.0, "base_link")
