"""`anomaly-seg evaluate` end to end: real ONNX model, generated Fishyscapes-layout set."""

import argparse
import json

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.commands import evaluate
from anomaly_seg_ros.errors import ConfigError, InputError
from anomaly_seg_ros.evaluation.scoring import ScoreSpec, compute_score_map


def _parse(argv):
    parser = argparse.ArgumentParser()
    evaluate.register(parser.add_subparsers())
    return parser.parse_args(["evaluate", *argv])


def test_report_files_all_scores_one_pass(tiny_model, dataset, tmp_path):
    out = tmp_path / "report"
    saved = tmp_path / "scores"
    argv = [str(dataset), "--out", str(out), "--model", str(tiny_model), "--no-progress"]
    argv += ["--backend", "onnxruntime", "--variants", "plain,refined+vde"]
    argv += ["--save-scores", str(saved), "--track", "obstacle", "--gallery", "2"]
    assert evaluate.run(_parse(argv)) == 0
    for name in ("results.json", "results.md", "roc.png", "pr.png", "per_frame_ap.csv"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "per_frame_ap.png").stat().st_size > 0
    gallery = sorted(path.name for path in (out / "gallery").iterdir())
    assert len(gallery) == 4 and gallery[0].startswith("best_01")
    assert cv2.imread(str(out / "gallery" / gallery[0])).shape[1] == 3 * 160

    report = json.loads((out / "results.json").read_text())
    # No SML statistics for the tiny model: sml is skipped, the other five run.
    expected = {"msp", "max_logit", "entropy", "energy", "max_min_logit"}
    expected |= {f"{name}+refined+vde" for name in expected}
    assert set(report["scores"]) == expected
    max_logit = report["scores"]["max_logit"]
    assert 0.0 <= max_logit["pixel"]["auroc"] <= 1.0
    assert max_logit["pixel"]["num_frames"] == 6
    assert max_logit["pixel"]["num_ignored"] == 6 * 6 * 160
    assert len(max_logit["per_frame"]) == 6
    assert max_logit["component"]["num_gt_instances"] == 6
    assert "| max_logit |" in (out / "results.md").read_text()
    assert report["settings"]["backend"].startswith("onnxruntime")

    # The saved maps reproduce the metrics without the detector, exactly.
    again = tmp_path / "again"
    argv = [str(dataset), "--out", str(again), "--from-scores", str(saved), "--no-progress"]
    argv += ["--track", "obstacle", "--gallery", "0"]
    assert evaluate.run(_parse(argv)) == 0
    replay = json.loads((again / "results.json").read_text())
    for name in expected:
        assert replay["scores"][name]["pixel"] == report["scores"][name]["pixel"]
        assert replay["scores"][name]["component"] == report["scores"][name]["component"]


def test_deterministic_and_binned(tiny_model, dataset, tmp_path):
    reports = []
    for run_index in range(2):
        out = tmp_path / f"run{run_index}"
        argv = [str(dataset), "--out", str(out), "--model", str(tiny_model), "--no-progress"]
        argv += ["--backend", "onnxruntime", "--scores", "entropy,energy", "--mode", "binned"]
        assert evaluate.run(_parse(argv)) == 0
        reports.append(out)
    for name in ("results.json", "results.md", "per_frame_ap.csv", "roc.png"):
        assert (reports[0] / name).read_bytes() == (reports[1] / name).read_bytes(), name
    report = json.loads((reports[0] / "results.json").read_text())
    assert report["scores"]["entropy"]["pixel"]["mode"] == "binned"


def test_scores_equal_the_detector_output(tiny_model, dataset):
    from anomaly_seg_ros.config import DetectorConfig
    from anomaly_seg_ros.datasets.anomaly import AnomalyDataset
    from anomaly_seg_ros.detector import Detector

    rgb, label = AnomalyDataset(dataset).read(0)
    base = DetectorConfig(boundary_width=4, boundary_iterations=2, road_confidence=0.05)
    with Detector.from_path(tiny_model, base, "onnxruntime") as detector:
        summary = detector.detect(rgb).summary
        for variant in ("plain", "refined", "vde", "refined+vde"):
            spec = ScoreSpec("entropy", variant)
            detector.config = spec.config(base)
            expected = detector.detect(rgb).score
            actual = compute_score_map(summary, spec.config(base), label.shape)
            np.testing.assert_array_equal(actual, expected, err_msg=variant)


def test_bad_requests(tiny_model, dataset, tmp_path):
    argv = [str(dataset), "--out", str(tmp_path / "r"), "--model", str(tiny_model)]
    with pytest.raises(ConfigError, match="unknown score"):
        evaluate.run(_parse([*argv, "--scores", "softmax", "--backend", "onnxruntime"]))
    with pytest.raises(InputError, match="holds no"):
        evaluate.run(_parse([*argv, "--from-scores", str(tmp_path)]))
    with pytest.raises(ConfigError, match="unknown variant"):
        ScoreSpec.parse("msp+smooth")


def test_cityscapes_layout_gives_miou(tiny_model, tmp_path):
    root = tmp_path / "cityscapes"
    rng = np.random.default_rng(3)
    for index in range(2):
        image_dir = root / "leftImg8bit" / "val" / "aachen"
        label_dir = root / "gtFine" / "val" / "aachen"
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        stem = f"aachen_000000_{index:06d}"
        rgb = rng.integers(0, 256, size=(64, 128, 3), dtype=np.uint8)
        cv2.imwrite(str(image_dir / f"{stem}_leftImg8bit.png"), rgb)
        label_ids = rng.choice(np.array([0, 7, 8, 11, 26], np.uint8), size=(64, 128))
        cv2.imwrite(str(label_dir / f"{stem}_gtFine_labelIds.png"), label_ids)
    out = tmp_path / "seg"
    argv = [str(root), "--out", str(out), "--model", str(tiny_model), "--no-progress"]
    assert evaluate.run(_parse([*argv, "--backend", "onnxruntime"])) == 0
    report = json.loads((out / "results.json").read_text())
    assert 0.0 <= report["miou"] <= 1.0
    assert np.sum(report["confusion"]) == 2 * 64 * 128
    assert "mIoU" in (out / "results.md").read_text()
