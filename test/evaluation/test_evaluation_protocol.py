"""Published evaluation protocols: frame skipping, network vs label size, the report line.

The score of the ``--from-scores`` tests is a fixed colour rule (red minus green, blurred),
not a network: the generated objects are magenta on a grey road, so the rule finds them
at either size, and the two sizes differ only where the blur and the resize meet the
object's border.
"""

import argparse
import json

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.commands import evaluate
from anomaly_seg_ros.datasets.anomaly import AnomalyDataset
from anomaly_seg_ros.errors import ConfigError, InputError
from anomaly_seg_ros.evaluation.frames import FrameScores, save_frame_scores
from anomaly_seg_ros.evaluation.protocol import EvaluationProtocol, resize_label_nearest

LABEL_SIZE = (96, 160)
NETWORK_SIZE = (64, 128)  # the tiny model's input; 1.5 × 1.25, so no pixel maps 1:1
WITH_ANOMALY = 6
WITHOUT_ANOMALY = 2


def _parse(argv):
    parser = argparse.ArgumentParser()
    evaluate.register(parser.add_subparsers())
    return parser.parse_args(["evaluate", *argv])


def _colour_score(rgb: np.ndarray) -> np.ndarray:
    red_minus_green = rgb[..., 0].astype(np.float32) - rgb[..., 1].astype(np.float32)
    return cv2.GaussianBlur(red_minus_green, (5, 5), 1.5)


@pytest.fixture(scope="module")
def validation_set(tmp_path_factory):
    """The common validation layout: six frames with a magenta object, two without."""
    root = tmp_path_factory.mktemp("validation") / "FS_LostFound_full"
    rng = np.random.default_rng(11)
    for index in range(WITH_ANOMALY + WITHOUT_ANOMALY):
        rgb = np.full((*LABEL_SIZE, 3), (90, 90, 100), np.uint8)
        rgb[:40] = (120, 170, 230)
        rgb += rng.integers(0, 20, size=rgb.shape, dtype=np.uint8)
        label = np.zeros(LABEL_SIZE, np.uint8)
        if index < WITH_ANOMALY:
            top, left, size = 45 + 5 * (index % 3), 20 + 20 * index, 15 + 3 * index
            rgb[top : top + size, left : left + size] = (250, 40, 200)
            label[top : top + size, left : left + size] = 1
        label[:6] = 255
        for folder, array in (("images", rgb[..., ::-1]), ("labels_masks", label)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / folder / f"{index:03d}.png"), array)
    return root


@pytest.fixture(scope="module")
def colour_scores(validation_set, tmp_path_factory):
    """Saved maps of the colour rule: at label size, and on the frame shrunk to the
    network size (INTER_AREA)."""
    folders = {}
    for eval_size, size in (("label", LABEL_SIZE), ("network", NETWORK_SIZE)):
        folder = tmp_path_factory.mktemp(f"scores_{eval_size}")
        for frame in AnomalyDataset(validation_set):
            rgb = frame.load_image()
            if size != LABEL_SIZE:
                rgb = cv2.resize(rgb, size[::-1], interpolation=cv2.INTER_AREA)
            save_frame_scores(
                folder, FrameScores(frame.name, np.zeros(0), {"colour": _colour_score(rgb)})
            )
        folders[eval_size] = folder
    return folders


def _run(dataset, out, *extra):
    argv = [str(dataset), "--out", str(out), "--no-progress", "--gallery", "0", *extra]
    assert evaluate.run(_parse(argv)) == 0
    return json.loads((out / "results.json").read_text()), (out / "results.md").read_text()


def test_label_resize_follows_pil_nearest():
    """Published tables resize labels with torchvision/PIL NEAREST; OpenCV's INTER_NEAREST
    picks another pixel at these scales."""
    image_module = pytest.importorskip("PIL.Image")
    label = np.random.default_rng(3).integers(0, 3, LABEL_SIZE, dtype=np.uint8)
    pil = np.asarray(
        image_module.fromarray(label).resize(NETWORK_SIZE[::-1], image_module.NEAREST)
    )
    np.testing.assert_array_equal(resize_label_nearest(label, NETWORK_SIZE), pil)
    opencv_default = cv2.resize(label, NETWORK_SIZE[::-1], interpolation=cv2.INTER_NEAREST)
    assert not np.array_equal(opencv_default, pil)
    assert resize_label_nearest(label, LABEL_SIZE) is label


def test_skipping_frames_without_anomaly(validation_set, colour_scores, tmp_path):
    scores = ["--from-scores", str(colour_scores["label"])]
    every, every_md = _run(validation_set, tmp_path / "every", *scores)
    skipped, skipped_md = _run(
        validation_set, tmp_path / "skip", *scores, "--skip-frames-without-anomaly"
    )
    assert every["num_frames"] == WITH_ANOMALY + WITHOUT_ANOMALY
    assert skipped["num_frames"] == WITH_ANOMALY
    assert skipped["settings"]["frames_skipped_without_anomaly"] == ["006", "007"]
    assert skipped["settings"]["protocol"] == {
        "layout": "validation",
        "skip_frames_without_anomaly": True,
        "eval_size": "label",
    }
    full, kept = every["scores"]["colour"]["pixel"], skipped["scores"]["colour"]["pixel"]
    # the two frames without anomaly held only in-distribution and void pixels
    valid_per_frame = (LABEL_SIZE[0] - 6) * LABEL_SIZE[1]
    assert full["num_positive"] == kept["num_positive"]
    assert full["num_negative"] - kept["num_negative"] == WITHOUT_ANOMALY * valid_per_frame
    assert kept["average_precision"] > 0.8 and full["average_precision"] > 0.8
    assert "frames without an anomaly pixel skipped (2 skipped)" in skipped_md
    assert "layout `validation`" in skipped_md
    assert "every labelled frame counted" in every_md


def test_network_and_label_size_differ_but_agree(validation_set, colour_scores, tmp_path):
    at_label, label_md = _run(
        validation_set, tmp_path / "label", "--from-scores", str(colour_scores["label"])
    )
    at_network, network_md = _run(
        validation_set,
        tmp_path / "network",
        "--from-scores",
        str(colour_scores["network"]),
        "--eval-size",
        "network",
    )
    label_pixels = at_label["scores"]["colour"]["pixel"]
    network_pixels = at_network["scores"]["colour"]["pixel"]
    frames = WITH_ANOMALY + WITHOUT_ANOMALY
    for pixels, (height, width) in ((label_pixels, LABEL_SIZE), (network_pixels, NETWORK_SIZE)):
        total = pixels["num_positive"] + pixels["num_negative"] + pixels["num_ignored"]
        assert total == frames * height * width
    # nearest neighbour keeps the object's share of the pixels (to its border rows/columns)
    share = [p["num_positive"] / (p["num_positive"] + p["num_negative"]) for p in
             (label_pixels, network_pixels)]  # fmt: skip
    assert share[1] == pytest.approx(share[0], rel=0.1)
    # the same rule at two sizes: different figures, both finding the objects
    assert label_pixels["average_precision"] != network_pixels["average_precision"]
    assert abs(label_pixels["average_precision"] - network_pixels["average_precision"]) < 0.1
    assert min(label_pixels["auroc"], network_pixels["auroc"]) > 0.95
    assert "scored at label size" in label_md
    assert "labels resized by nearest neighbour" in network_md
    # network-size maps read at label size: the mismatch is named, not resized away
    with pytest.raises(InputError, match=r"\(64, 128\), its label \(96, 160\).*--eval-size"):
        _run(validation_set, tmp_path / "mismatch", "--from-scores",
             str(colour_scores["network"]))  # fmt: skip


def test_network_size_with_the_detector(tiny_model, dataset, tmp_path):
    """The conftest's processed-layout set (96×160) through the 64×128 tiny model."""
    out, saved = tmp_path / "report", tmp_path / "scores"
    argv = [str(dataset), "--out", str(out), "--model", str(tiny_model), "--no-progress"]
    argv += ["--backend", "onnxruntime", "--scores", "max_logit", "--eval-size", "network"]
    argv += ["--gallery", "1", "--save-scores", str(saved), "--track", "obstacle"]
    assert evaluate.run(_parse(argv)) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["settings"]["network_size"] == list(NETWORK_SIZE)
    assert report["settings"]["protocol"]["eval_size"] == "network"
    pixel = report["scores"]["max_logit"]["pixel"]
    # void rows 0-5 of 96 become rows 0-3 of 64 under PIL's nearest neighbour
    assert pixel["num_ignored"] == 6 * 4 * NETWORK_SIZE[1]
    assert np.load(saved / "max_logit" / "000.npy").shape == NETWORK_SIZE
    gallery = sorted((out / "gallery").iterdir())
    assert cv2.imread(str(gallery[0])).shape[1] == 3 * NETWORK_SIZE[1]
    assert "scored at network size 64×128" in (out / "results.md").read_text()


def test_network_size_needs_the_stretched_view(tiny_model, dataset, tmp_path):
    """A letterboxed or cropped view is not the whole label resized: refused, not misaligned."""
    params = tmp_path / "letterbox.yaml"
    params.write_text("/**:\n  ros__parameters:\n    aspect: letterbox\n")
    argv = [str(dataset), "--out", str(tmp_path / "report"), "--model", str(tiny_model)]
    argv += ["--backend", "onnxruntime", "--scores", "max_logit", "--eval-size", "network"]
    argv += ["--params", str(params), "--no-progress"]
    with pytest.raises(InputError, match="--eval-size network needs aspect 'stretch'"):
        evaluate.run(_parse(argv))
    assert not (tmp_path / "report").exists()


def test_ambiguous_folder_and_nothing_left(validation_set, colour_scores, tmp_path):
    mixed = tmp_path / "mixed"
    (mixed / "original").mkdir(parents=True)
    (mixed / "images").symlink_to(validation_set / "images")
    (mixed / "labels_masks").symlink_to(validation_set / "labels_masks")
    scores = ["--from-scores", str(colour_scores["label"])]
    with pytest.raises(InputError, match=r"--layout processed\|validation"):
        _run(mixed, tmp_path / "r", *scores)
    report, _ = _run(mixed, tmp_path / "r", *scores, "--layout", "validation")
    assert report["settings"]["layout"] == "validation"

    no_anomaly = tmp_path / "no_anomaly"
    for folder in ("images", "labels_masks"):
        (no_anomaly / folder).mkdir(parents=True)
        (no_anomaly / folder / "007.png").symlink_to(validation_set / folder / "007.png")
    with pytest.raises(ConfigError, match=r"no frame .* has an anomaly pixel"):
        _run(no_anomaly, tmp_path / "n", *scores, "--skip-frames-without-anomaly")


def test_protocol_rejects_an_unknown_size():
    with pytest.raises(ConfigError, match="unknown eval size"):
        EvaluationProtocol("processed", eval_size="camera")
