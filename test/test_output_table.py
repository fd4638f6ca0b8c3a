"""The output table is the one declaration of the node's outputs: every place that lists
them (Detector, settings, bag run, YAML, docs, README) holds exactly its rows.

A new row that is not implemented, or a place that lists outputs by hand and misses it,
fails here (the node's publishers: test/ros/test_node_outputs.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from anomaly_seg_ros.detector import Detector, Result
from anomaly_seg_ros.io import bag_run, object_messages, outputs
from anomaly_seg_ros.node_settings import (
    NodeSettings,
    node_parameter_names,
    published,
    toggle_values,
)
from anomaly_seg_ros.output_table import (
    BAG_OUTPUT_NAMES,
    IMAGE_MSGTYPE,
    MAKERS,
    ON_REQUEST,
    OUTPUTS,
    TOGGLES,
    markdown_table,
    output,
)

ROOT = Path(__file__).resolve().parents[1]
RESULT_FIELDS = {f.name for f in dataclasses.fields(Result)}


def test_rows_are_complete_and_unique() -> None:
    assert len({o.name for o in OUTPUTS}) == len({o.toggle for o in OUTPUTS}) == len(OUTPUTS)
    for row in OUTPUTS:
        assert row.made_by in MAKERS, row
        assert row.toggle.startswith("publish_") and row.description, row
        assert re.fullmatch(r"\w+/msg/\w+", row.msgtype), row
        if row.is_image:
            assert row.msgtype == IMAGE_MSGTYPE and row.encoding, row
            assert row.field in RESULT_FIELDS, f"{row.name}: Result has no field {row.field!r}"
        else:
            assert not row.encoding and not row.field, row
    assert output("overlay").on_request and not output("labels").on_request
    with pytest.raises(KeyError, match="valid: labels"):
        output("labelz")


def test_what_lists_outputs_is_made_from_the_table() -> None:
    images = tuple(o.name for o in OUTPUTS if o.is_image)
    assert outputs.OUTPUT_TOPIC_NAMES == images
    assert tuple(o.name for o in object_messages.OBJECT_TOPICS) == tuple(
        o.name for o in OUTPUTS if not o.is_image
    )
    assert set(object_messages.BAG_OBJECT_NAMES) | set(images) == set(BAG_OUTPUT_NAMES)
    assert bag_run.RUN_OUTPUT_NAMES == BAG_OUTPUT_NAMES
    assert TOGGLES == tuple(o.toggle for o in OUTPUTS)
    assert set(TOGGLES) <= set(node_parameter_names())  # params files may hold them


def test_bag_run_offers_exactly_the_rows_it_can_write() -> None:
    from anomaly_seg_ros.commands import bag

    parser = argparse.ArgumentParser()
    bag.register(parser.add_subparsers())
    run = parser.parse_args(["bag", "run", "in", "out"])
    assert run.outputs is None  # default: all (where their message types can be built)
    for name in BAG_OUTPUT_NAMES:
        assert parser.parse_args(["bag", "run", "in", "out", "--outputs", name]).outputs == [name]
    for name in {o.name for o in OUTPUTS} - set(BAG_OUTPUT_NAMES):
        with pytest.raises(SystemExit):
            parser.parse_args(["bag", "run", "in", "out", "--outputs", name])


def test_settings_switch_each_row_by_its_toggle() -> None:
    settings = NodeSettings()
    assert settings.publish == {o.name for o in OUTPUTS if o.default}
    assert toggle_values(settings.publish) == {o.toggle: o.default for o in OUTPUTS}
    for row in OUTPUTS:
        off = published({row.toggle: False}, settings.publish)
        assert row.name not in off and len(off) == len(settings.publish) - 1
        assert published({row.toggle: True}, off) == settings.publish
    with pytest.raises(Exception, match="unknown output"):
        NodeSettings(publish=frozenset({"labelz"}))
    with pytest.raises(Exception, match="publish_mask must be true or false"):
        published({"publish_mask": "yes"}, settings.publish)


def test_the_detector_makes_every_image_row(tiny_model: Path) -> None:
    """``detect`` rows are in every result; ``render`` rows only when asked for."""
    frame = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    with Detector.from_path(tiny_model, backend="onnxruntime") as detector:
        plain = detector.detect(frame)
        drawn = detector.render(frame, plain, ON_REQUEST)
        asked = detector.detect(frame, outputs=ON_REQUEST)
    for row in (o for o in OUTPUTS if o.is_image):
        assert getattr(drawn, row.field) is not None, row.name
        assert getattr(asked, row.field) is not None, row.name
        assert (getattr(plain, row.field) is None) == row.on_request, row.name
    packed = outputs.result_images(drawn, outputs.OUTPUT_TOPIC_NAMES)
    assert {name: raw.encoding for name, raw in packed.items()} == {
        o.name: o.encoding for o in OUTPUTS if o.is_image
    }


def test_yaml_switches_are_the_rows() -> None:
    values = yaml.safe_load((ROOT / "config" / "detector.yaml").read_text())["/**"][
        "ros__parameters"
    ]
    switches = {name: value for name, value in values.items() if name.startswith("publish_")}
    assert switches == {o.toggle: o.default for o in OUTPUTS}


def test_ros_page_holds_the_generated_table() -> None:
    page = (ROOT / "docs" / "ros.md").read_text()
    begin, end = "<!-- output table: generated, do not edit by hand -->\n", "<!-- end of"
    table = page[page.index(begin) + len(begin) : page.index(end, page.index(begin))]
    assert table == markdown_table(), "run: python -m anomaly_seg_ros.output_table"


def test_readme_topic_rows_are_the_table() -> None:
    """The README's short topic table names every output once, with its type."""
    readme = (ROOT / "README.md").read_text()
    listed: dict[str, str] = {}
    for cells in re.findall(r"^\| (`~/.*?) \| (.*?) \|", readme, re.M):
        names = re.findall(r"`~/(\w+)`", cells[0])
        kinds = re.findall(r"`([^`]+)`", cells[1])
        image = cells[1].startswith("Image")
        assert len(kinds) in (1, len(names)), cells
        for index, name in enumerate(names):
            kind = kinds[index if len(kinds) > 1 else 0]
            listed[name] = f"Image {kind}" if image else kind
    expected = {
        o.name: f"Image {o.encoding}" if o.is_image else o.msgtype.replace("/msg/", "/")
        for o in OUTPUTS
    }
    assert listed == expected
