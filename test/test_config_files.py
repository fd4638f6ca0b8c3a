"""The one settings-file loader: YAML file -> dotted key=value overrides -> frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from anomaly_seg_ros.config_files import (
    apply_overrides,
    build_dataclass,
    load_dataclass,
    read_yaml,
    read_yaml_mapping,
)
from anomaly_seg_ros.errors import ConfigError


@dataclass(frozen=True)
class Loss:
    kind: str = "ovr"
    k: int = 5


@dataclass(frozen=True)
class Settings:
    lr: float = 0.1
    crop_size: tuple[int, int] = (64, 64)
    loss: Loss = field(default_factory=Loss)
    mix: Loss | None = None

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ConfigError(f"lr {self.lr} must be > 0")


def test_file_then_dotted_overrides(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("lr: 0.5\nloss: {kind: energy}\n")
    settings = load_dataclass(Settings, path, ["loss.k=3", "crop_size=[32, 96]"], "test")
    assert settings == Settings(lr=0.5, crop_size=(32, 96), loss=Loss("energy", 3))
    assert load_dataclass(Settings, None, ["mix.k=2"], "test").mix == Loss(k=2)
    assert load_dataclass(Settings, None, (), "test") == Settings()


def test_overrides_leave_the_input_alone():
    values = {"loss": {"kind": "energy"}}
    assert apply_overrides(values, ["loss.k=1"]) == {"loss": {"kind": "energy", "k": 1}}
    assert values == {"loss": {"kind": "energy"}}


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "cannot read test config {path}: No such file or directory"),
        (b"\xff\xfe\x00\x81", "cannot read test config {path}: 'utf-8' codec can't decode"),
        ("a: [\n::", "cannot read test config {path}: while parsing"),
        ("- a\n- b\n", "{path} is not a test config: expected a YAML mapping of settings"),
        ("lrate: 1\n", "unknown test setting(s) ['lrate']; valid: crop_size, loss, lr, mix"),
        ("loss: {kd: 1}\n", "unknown test setting(s) ['loss.kd']; valid in loss: k, kind"),
        ("lr: -1\n", "lr -1 must be > 0"),
        ("lr: abc\n", "invalid test settings Settings: '<=' not supported"),
    ],
)
def test_file_errors_are_one_line_naming_the_file_or_key(tmp_path, content, expected):
    path = tmp_path / "s.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_dataclass(Settings, path, (), "test")
    message = str(caught.value)
    assert "\n" not in message and message.startswith(expected.format(path=path)), message


@pytest.mark.parametrize(
    "override, expected",
    [
        ("lr", "override 'lr' must look like key=value"),
        ("=1", "override '=1' must look like key=value"),
        ("lr=[", "override 'lr=[': value is not valid YAML"),
        ("loss.kd=1", "unknown test setting(s) ['loss.kd']"),
    ],
)
def test_override_errors_name_the_override(override, expected):
    with pytest.raises(ConfigError) as caught:
        load_dataclass(Settings, None, [override], "test")
    assert "\n" not in str(caught.value) and str(caught.value).startswith(expected)


def test_empty_file_is_empty_mapping(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert read_yaml(path, "test config") is None
    assert read_yaml_mapping(path, "test config") == {}


def test_not_a_dataclass():
    with pytest.raises(TypeError, match="not a dataclass"):
        build_dataclass(dict, {}, "test")
