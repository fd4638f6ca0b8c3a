"""`anomaly-seg detect` refuses bad input with one line naming the file or value."""

from __future__ import annotations

import json
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from image_fixtures import (
    exif_oriented_jpeg,
    jpeg_claiming,
    png_claiming,
    textured_jpeg,
    zeroed_jpeg,
)

from anomaly_seg_ros.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "a.png"), rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    return folder


def detect(caplog, *arguments: object) -> tuple[int, str]:
    caplog.clear()
    code = main(["detect", *map(str, arguments)])
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    return code, "\n".join(errors)


def test_non_finite_threshold_is_refused(tiny_model, image_folder, tmp_path, caplog) -> None:
    for value in ("nan", "inf"):
        code, error = detect(
            caplog, image_folder, "--model", tiny_model, "--out", tmp_path / "o",
            "--threshold", value,
        )  # fmt: skip
        assert code == 1 and f"threshold {value} must be a finite number" in error


def test_bad_params_files_are_errors_not_defaults(
    tiny_model, image_folder, tmp_path, caplog
) -> None:
    cases = {
        "text.yaml": ("just some text\n", "is not a ROS 2 parameters file"),
        "binary.yaml": (b"\xff\xfe\x00\x81garbage", "cannot read parameters file"),
        "broken.yaml": ("/**: [\n::", "cannot read parameters file"),
        "typo.yaml": (
            "/**:\n  ros__parameters:\n    thershold: 2.0\n    qos_profile: reliable\n",
            "unknown parameter(s) 'thershold' (did you mean 'threshold'?)",
        ),
    }
    for name, (content, expected) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        code, error = detect(
            caplog, image_folder, "--model", tiny_model, "--out", tmp_path / "o", "--params", path
        )
        assert code == 1, name
        assert expected in error and str(path) in error, (name, error)
        assert len(error.splitlines()) == 1
    code, error = detect(
        caplog, image_folder, "--model", tiny_model, "--out", tmp_path / "o",
        "--params", tmp_path / "absent.yaml",
    )  # fmt: skip
    assert code == 1 and "absent.yaml" in error


def copy_model(tiny_model: Path, folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    model = folder / "model.onnx"
    shutil.copy(tiny_model, model)
    shutil.copy(tiny_model.with_suffix(".json"), folder / "model.json")
    return model


def test_garbage_sidecars_and_sml_stats(tiny_model, image_folder, tmp_path, caplog) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    sidecar = json.loads(model.with_suffix(".json").read_text())
    cases = {
        "a JSON list": (json.dumps([1, 2]), "not an anomaly_seg_ros model sidecar (a JSON list"),
        "binary": ("\udcff", "cannot read sidecar"),
        "NaN mean": (
            json.dumps({**sidecar, "mean": [float("nan"), 0.4, 0.4]}),
            "must be finite numbers",
        ),
    }
    for what, (content, expected) in cases.items():
        model.with_suffix(".json").write_bytes(content.encode("utf-8", "surrogateescape"))
        code, error = detect(caplog, image_folder, "--model", model, "--out", tmp_path / "o")
        assert code == 1 and expected in error and "model.json" in error, (what, error)
    model.with_suffix(".json").write_text(json.dumps(sidecar))

    stats = tmp_path / "stats.json"
    sml_cases = {
        b"\x00\xffgarbage": "cannot read SML stats",
        b"[1, 2, 3]": "not an SML stats file (a JSON list",
        b'"text"': "not an SML stats file (a JSON str",
    }
    for content, expected in sml_cases.items():
        stats.write_bytes(content)
        code, error = detect(
            caplog, image_folder, "--model", model, "--out", tmp_path / "o",
            "--sml-stats", stats, "--score", "sml",
        )  # fmt: skip
        assert code == 1 and expected in error and "stats.json" in error, (content, error)


def test_a_folder_named_like_an_image_is_not_an_image(
    tiny_model, image_folder, tmp_path, caplog
) -> None:
    (image_folder / "b.png").mkdir()
    out = tmp_path / "o"
    code, error = detect(caplog, image_folder, "--model", tiny_model, "--out", out)
    assert code == 0, error
    assert sorted(p.name for p in out.iterdir())[0] == "a_labels.png"
    assert not list(out.glob("b_*"))


def test_exif_orientation_is_ignored_like_in_the_node(tiny_model, tmp_path, caplog) -> None:
    folder = tmp_path / "exif"
    folder.mkdir()
    (folder / "turned.jpg").write_bytes(
        exif_oriented_jpeg(np.zeros((40, 60, 3), np.uint8), orientation=6)
    )
    assert cv2.imread(str(folder / "turned.jpg")).shape[:2] == (60, 40)  # OpenCV would turn it
    out = tmp_path / "o"
    code, error = detect(caplog, folder, "--model", tiny_model, "--out", out)
    assert code == 0, error
    assert cv2.imread(str(out / "turned_labels.png"), cv2.IMREAD_UNCHANGED).shape == (40, 60)


def test_image_size_is_checked_on_the_header_before_decoding(tiny_model, tmp_path, caplog) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "huge.png").write_bytes(png_claiming(20_000, 20_000))  # 400 M pixels, ~100 B
    started = time.monotonic()
    code, error = detect(caplog, folder, "--model", tiny_model, "--out", tmp_path / "o")
    assert code == 1 and "huge.png" in error and "exceeds the limit" in error, error
    assert time.monotonic() - started < 10.0  # refused from the header, not decoded


def _small_file_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes then fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))


def test_a_failing_write_is_an_error_not_success(tiny_model, image_folder, tmp_path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "anomaly_seg_ros.cli", "detect", str(image_folder),
         "--model", str(tiny_model), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_small_file_limit,  # what a full disk does to a write
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "cannot write" in run.stderr and "Traceback" not in run.stderr
    assert "wrote" not in run.stdout
    for written in out.iterdir():  # what is there is complete; no half-written PNG
        assert not written.name.startswith(".")
        assert cv2.imread(str(written)) is not None, written


def test_bad_files_are_named_and_the_rest_of_the_folder_is_processed(
    tiny_model, image_folder, tmp_path, caplog
) -> None:
    (image_folder / "0_empty.png").write_bytes(b"")  # sorts first: the run must go on
    (image_folder / "b_zeroed.jpg").write_bytes(zeroed_jpeg(textured_jpeg()))
    (image_folder / "c_claims.jpg").write_bytes(jpeg_claiming(textured_jpeg(), 4000, 6000))
    out = tmp_path / "o"
    code, error = detect(caplog, image_folder, "--model", tiny_model, "--out", out)
    assert code == 1
    for name, problem in [
        ("0_empty.png", "empty file"),
        ("b_zeroed.jpg", "premature end"),
        ("c_claims.jpg", "decompression bomb"),
    ]:
        assert any(name in line and problem in line for line in error.splitlines()), error
    assert "3 of 4 images not processed" in error
    assert (
        sorted(p.name.split("_")[0] for p in out.iterdir()) == ["a"] * 6
    )  # 5 images + objects JSON


def test_two_inputs_with_one_name_are_refused_before_any_work(
    tiny_model, tmp_path, caplog
) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "x.png"), np.zeros((8, 8, 3), np.uint8))
    out = tmp_path / "o"
    code, error = detect(
        caplog, tmp_path / "a" / "x.png", tmp_path / "b" / "x.png", "--model", tiny_model,
        "--out", out,
    )  # fmt: skip
    assert code == 1 and "would both write" in error and "x.png" in error, error
    assert not out.exists() or not list(out.iterdir())


def test_an_unwritable_output_folder_is_one_line(tiny_model, image_folder, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    run = subprocess.run(
        [sys.executable, "-m", "anomaly_seg_ros.cli", "detect", str(image_folder),
         "--model", str(tiny_model), "--out", str(blocker / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"--out {blocker / 'out'}: cannot write there" in run.stderr


def _mid_file_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500))  # the mask fits, the overlay not


def test_a_full_disk_leaves_no_partial_frame_set(tiny_model, tmp_path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "a.png"), rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    out = tmp_path / "o"
    run = subprocess.run(
        [sys.executable, "-m", "anomaly_seg_ros.cli", "detect", str(folder),
         "--model", str(tiny_model), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, preexec_fn=_mid_file_limit,
    )  # fmt: skip
    assert run.returncode == 1 and "none of them was kept" in run.stderr, run.stderr
    assert list(out.iterdir()) == []  # not 4 of 5 files, and no temporary file either
