"""Class names and colours: written once, equal to cityscapesscripts, read from the sidecar."""

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as cityscapes_labels

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.model.classes import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_COLORS,
    default_class_colors,
    palette_table,
)
from anomaly_seg_ros.model.sidecar import ModelInfo, load_model_info
from anomaly_seg_ros.pipeline.visualize import cityscapes_palette, model_palette


def test_cityscapes_facts_equal_cityscapesscripts():
    train = sorted(
        (lab for lab in cityscapes_labels if 0 <= lab.trainId < 255), key=lambda lab: lab.trainId
    )
    assert CITYSCAPES_CLASSES == tuple(label.name for label in train)
    assert CITYSCAPES_COLORS == tuple(tuple(label.color) for label in train)
    table = cityscapes_palette()
    assert table.shape == (256, 3) and table.dtype == np.uint8
    assert (table[19:] == 0).all()


def test_sidecar_colours_round_trip_and_are_checked(tiny_model):
    info = load_model_info(tiny_model)
    assert info.class_colors == CITYSCAPES_COLORS  # export writes them
    np.testing.assert_array_equal(model_palette(info), cityscapes_palette())
    custom = tuple((i, 2 * i, 255 - i) for i in range(info.num_classes))
    changed = ModelInfo.from_json({**info.to_json(), "class_colors": custom})
    assert changed.class_colors == custom
    np.testing.assert_array_equal(model_palette(changed)[:19], np.array(custom, np.uint8))
    legacy = info.to_json()
    del legacy["class_colors"]
    fallback = ModelInfo.from_json(legacy)
    assert fallback.class_colors == () and "class_colors" not in fallback.to_json()
    np.testing.assert_array_equal(model_palette(fallback), cityscapes_palette())
    with pytest.raises(ModelError, match="3 class colours for 19 classes"):
        ModelInfo.from_json({**legacy, "class_colors": custom[:3]})
    with pytest.raises(ModelError, match=r"0\.\.255"):
        ModelInfo.from_json({**legacy, "class_colors": [(0, 0, 256)] * 19})
    assert default_class_colors(20)[19] == (0, 0, 0)
    with pytest.raises(ValueError, match="at most 255"):
        palette_table([(0, 0, 0)] * 256)


def test_detector_colours_without_cityscapesscripts(tiny_model, tmp_path):
    """After a rosdep-only install there is no cityscapesscripts: colour and overlay work."""
    model = tmp_path / "coloured.onnx"
    shutil.copy(tiny_model, model)
    sidecar = json.loads(tiny_model.with_suffix(".json").read_text())
    sidecar["class_colors"] = [[10 * i, 0, 255 - 10 * i] for i in range(19)]
    model.with_suffix(".json").write_text(json.dumps(sidecar))
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["cityscapesscripts"] = None  # any import of it now raises ImportError
        import numpy as np
        from anomaly_seg_ros.detector import Detector
        frame = np.random.default_rng(0).integers(0, 256, (40, 90, 3), dtype=np.uint8)
        with Detector.from_path({str(model)!r}, backend="onnxruntime") as detector:
            result = detector.detect(frame, outputs=("labels_color", "overlay"))
        expected = np.array([[10 * i, 0, 255 - 10 * i] for i in range(19)], np.uint8)
        assert (result.labels_color == expected[result.labels]).all()
        assert result.overlay.shape == (40, 90, 3)
        assert not [m for m in sys.modules if m.startswith("cityscapesscripts.")]
        print("OK")
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().endswith("OK")
