"""The `anomaly-seg` command: detect and export, in-process and as the installed script."""

import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.cli import main


@pytest.fixture
def images(tmp_path, rng):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(3):
        image = rng.integers(0, 256, size=(72, 150, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"frame{index}.png"), image)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_detect_writes_five_pngs_per_image(tiny_model, images, tmp_path):
    out = tmp_path / "out"
    assert (
        main(
            [
                "detect",
                str(images),
                "--model",
                str(tiny_model),
                "--out",
                str(out),
                "--score",
                "entropy",
                "--threshold",
                "1.0",
                "--save-raw",
            ]
        )
        == 0
    )
    for index in range(3):
        for kind in ("labels", "labels_color", "score", "mask", "overlay"):
            picture = cv2.imread(str(out / f"frame{index}_{kind}.png"), cv2.IMREAD_UNCHANGED)
            assert picture is not None and picture.shape[:2] == (72, 150), kind
        mask = cv2.imread(str(out / f"frame{index}_mask.png"), cv2.IMREAD_UNCHANGED)
        score = np.load(out / f"frame{index}_score.npy")
        assert set(np.unique(mask)) <= {0, 255}
        np.testing.assert_array_equal(mask == 255, score > 1.0)


def test_detect_reads_settings_from_the_params_file(tiny_model, images, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    score_type: msp\n    threshold: 2.0\n"
        "    qos_profile: reliable\n"  # a node-only setting: known, not used by detect
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "detect",
                str(images / "frame0.png"),
                "--model",
                str(tiny_model),
                "--out",
                str(out),
                "--params",
                str(params),
            ]
        )
        == 0
    )
    mask = cv2.imread(str(out / "frame0_mask.png"), cv2.IMREAD_UNCHANGED)
    assert not mask.any()  # msp ≤ 1 never exceeds 2.0


def test_detect_errors_are_reported_not_raised(tmp_path, images, caplog):
    assert (
        main(
            [
                "detect",
                str(images),
                "--model",
                str(tmp_path / "none.onnx"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    assert "none.onnx not found" in caplog.text
    assert (
        main(
            [
                "detect",
                str(tmp_path / "missing"),
                "--model",
                str(tmp_path / "none.onnx"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )


def test_export_random_init_and_installed_script(tmp_path):
    pytest.importorskip("torch")
    script = shutil.which("anomaly-seg") or [sys.executable, "-m", "anomaly_seg_ros.cli"]
    command = [script] if isinstance(script, str) else script
    out = tmp_path / "random.onnx"
    completed = subprocess.run(
        [
            *command,
            "export",
            "--random-init",
            "--width-mult",
            "0.25",
            "--input-size",
            "64",
            "64",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert "parity: labels 100" in completed.stderr or "parity: labels 99.9" in completed.stderr


def test_export_random_init_with_the_separable_decoder(tmp_path, caplog):
    pytest.importorskip("torch")
    out = tmp_path / "separable.onnx"
    common = ["export", "--random-init", "--decoder", "separable", "--input-size", "64", "64"]
    assert main([*common, "--width-mult", "0.25", "--out", str(out)]) == 0
    architecture = json.loads(out.with_suffix(".json").read_text())["architecture"]
    assert architecture["decoder"] == "separable" and architecture["width_mult"] == 0.25
    bad = tmp_path / "wrn.onnx"
    assert main([*common, "--backbone", "wideresnet38", "--out", str(bad)]) == 1
    assert "'wideresnet38' takes no option(s) ['decoder']" in caplog.text and not bad.exists()


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "detect" in capsys.readouterr().out


def test_export_from_our_checkpoint_and_run_it_with_torch_and_onnx(tmp_path, rng):
    torch = pytest.importorskip("torch")
    from anomaly_seg_ros.backends import create_backend
    from anomaly_seg_ros.networks import create_network
    from anomaly_seg_ros.networks.checkpoint import save_checkpoint

    torch.manual_seed(3)
    network = create_network("mobilenetv2", 19, 16, width_mult=0.25)
    names = [f"k{i}" for i in range(19)]
    checkpoint = save_checkpoint(tmp_path / "model.pt", network, names, epoch=7)
    out = tmp_path / "model.onnx"
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(checkpoint),
                "--input-size",
                "64",
                "96",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    image = rng.normal(size=(1, 3, 64, 96)).astype(np.float32)
    with create_backend("onnxruntime", out) as onnx_backend:
        assert onnx_backend.info.class_names == tuple(names)
        assert onnx_backend.info.provenance["epoch"] == 7
        onnx_summary = onnx_backend.infer(image)
    # The torch backend reads the sidecar beside the checkpoint (same stem).
    with create_backend("torch", checkpoint) as torch_backend:
        torch_summary = torch_backend.infer(image)
    assert np.mean(onnx_summary.label == torch_summary.label) >= 0.999
    assert np.abs(onnx_summary.max_logit - torch_summary.max_logit).max() <= 1e-3
