"""Segmentation metrics against cityscapesscripts' own evaluation on the same PNG files."""

import math

import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as cityscapes_eval  # noqa: N813
import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as cityscapes_labels

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.evaluation.segmentation_metrics import (
    SegmentationEvaluator,
)
from anomaly_seg_ros.model.classes import CITYSCAPES_CLASSES

#: train ID → label ID lookup (255 → 0 "unlabeled", which Cityscapes ignores).
TRAIN_TO_ID = np.zeros(256, dtype=np.uint8)
ID_TO_TRAIN = np.full(256, 255, dtype=np.uint8)
for _label in cityscapes_labels:
    if 0 <= _label.trainId < 19:
        TRAIN_TO_ID[_label.trainId] = _label.id
    if _label.id >= 0:
        ID_TO_TRAIN[_label.id] = _label.trainId if 0 <= _label.trainId < 19 else 255


def _random_frames(seed, count=3, shape=(48, 64)):
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        # Label IDs 0..33, including ignored ones (0 unlabeled, 1 ego vehicle, 4 static, ...).
        gt_ids = rng.integers(0, 34, size=shape).astype(np.uint8)
        truth = ID_TO_TRAIN[gt_ids]
        # Mostly correct predictions, some random train IDs; train (16) never predicted.
        prediction = np.where(rng.random(shape) < 0.6, truth, rng.integers(0, 16, size=shape))
        prediction = np.where(prediction == 255, rng.integers(0, 16, size=shape), prediction)
        frames.append((prediction.astype(np.uint8), gt_ids))
    return frames


def test_iou_matches_cityscapesscripts(tmp_path):
    frames = _random_frames(0)
    prediction_files, truth_files = [], []
    evaluator = SegmentationEvaluator()
    for index, (prediction, gt_ids) in enumerate(frames):
        prediction_file = tmp_path / f"frankfurt_000000_{index:06d}_pred.png"
        truth_file = tmp_path / f"frankfurt_000000_{index:06d}_gtFine_labelIds.png"
        cv2.imwrite(str(prediction_file), TRAIN_TO_ID[prediction])
        cv2.imwrite(str(truth_file), gt_ids)
        prediction_files.append(str(prediction_file))
        truth_files.append(str(truth_file))
        evaluator.process(prediction, ID_TO_TRAIN[gt_ids])

    args = cityscapes_eval.args
    args.evalInstLevelScore = False
    args.JSONOutput = False
    args.quiet = True
    reference = cityscapes_eval.evaluateImgLists(prediction_files, truth_files, args)
    metrics = evaluator.evaluate()

    for train_id, name in enumerate(CITYSCAPES_CLASSES):
        expected = reference["classScores"][name]
        actual = metrics.iou[train_id]
        if math.isnan(expected):
            assert math.isnan(actual), name
        else:
            assert actual == pytest.approx(expected, abs=1e-12), name
    expected_mean = cityscapes_eval.getScoreAverage(reference["classScores"], args)
    assert metrics.miou == pytest.approx(expected_mean, abs=1e-12)


def test_hand_computed_iou_with_ignore_and_absent_classes():
    label = np.array([[0, 0, 1, 255]], dtype=np.uint8)
    prediction = np.array([[0, 1, 1, 2]], dtype=np.uint8)
    evaluator = SegmentationEvaluator(class_names=("a", "b", "c", "d"))
    evaluator.process(prediction, label)
    metrics = evaluator.evaluate()
    # a: TP 1, FN 1 -> 1/2; b: TP 1, FP 1 -> 1/2; c only predicted on ignored GT -> NaN;
    # d absent -> NaN.
    assert metrics.iou[:2] == (0.5, 0.5)
    assert math.isnan(metrics.iou[2]) and math.isnan(metrics.iou[3])
    assert metrics.miou == 0.5
    assert metrics.pixel_accuracy == pytest.approx(2 / 3)
    assert metrics.confusion.sum() == 4
    assert metrics.confusion[-1, 2] == 1  # ignored GT row keeps the pixel for the record


def test_prediction_outside_classes_counts_as_false_negative():
    evaluator = SegmentationEvaluator(class_names=("a", "b"))
    evaluator.process(np.array([[255, 0]], np.uint8), np.array([[0, 0]], np.uint8))
    assert evaluator.evaluate().iou[0] == 0.5


def test_invalid_input_raises():
    evaluator = SegmentationEvaluator()
    with pytest.raises(InputError, match="shape"):
        evaluator.process(np.zeros((2, 2), np.uint8), np.zeros((3, 2), np.uint8))
    with pytest.raises(InputError, match="integer"):
        evaluator.process(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.uint8))
