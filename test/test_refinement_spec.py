"""The one specification of the scores and refinements, against the config it mirrors."""

from dataclasses import fields

import numpy as np
import pytest

from anomaly_seg_ros import config as config_module
from anomaly_seg_ros.config import DetectorConfig
from anomaly_seg_ros.refinement_spec import (
    REFINEMENTS,
    SCORE_FORMULAS,
    SCORE_TYPES,
    SCORES_WITH_STATISTICS,
    SCORES_WITHOUT_STATISTICS,
    BoundarySuppression,
    DilatedSmoothing,
    RoadRegion,
)


def test_the_score_list_is_the_formula_table_and_the_config_reads_it():
    assert SCORE_TYPES == tuple(SCORE_FORMULAS)
    assert config_module.SCORE_TYPES is SCORE_TYPES
    assert set(SCORES_WITH_STATISTICS) | set(SCORES_WITHOUT_STATISTICS) == set(SCORE_TYPES)
    assert not set(SCORES_WITH_STATISTICS) & set(SCORES_WITHOUT_STATISTICS)


def test_every_refinement_parameter_is_one_config_field_of_one_refinement():
    config_fields = {field.name for field in fields(DetectorConfig)}
    seen: list[str] = []
    for refinement in REFINEMENTS:
        assert refinement.SWITCH in config_fields
        assert set(refinement.parameters()) <= config_fields
        seen += [refinement.SWITCH, *refinement.parameters()]
    assert len(seen) == len(set(seen))


def test_parameters_are_read_from_the_config():
    config = DetectorConfig(boundary_width=8, smoothing_kernel=5, road_confidence=0.5)
    assert BoundarySuppression.from_config(config) == BoundarySuppression(8, 4)
    assert DilatedSmoothing.from_config(config).taps == DilatedSmoothing(5, 1.0, 6).taps
    assert RoadRegion.from_config(config).road_confidence == 0.5


@pytest.mark.parametrize(("width", "iterations"), [(4, 4), (8, 4), (6, 3), (0, 2), (2, 4)])
def test_band_radii_shrink_to_zero(width, iterations):
    radii = BoundarySuppression(width, iterations).radii
    assert len(radii) == iterations and radii[-1] == 0
    assert list(radii) == sorted(radii, reverse=True)
    assert radii[0] == max(0, width - 1)


def test_no_iterations_no_radii():
    assert BoundarySuppression(4, 0).radii == ()


def test_smoothing_taps_sum_to_one_and_offsets_span_the_reach():
    smoothing = DilatedSmoothing(7, 1.0, 6)
    assert len(smoothing.taps) == 7
    assert sum(smoothing.taps) == pytest.approx(1.0, abs=1e-6)  # float32 taps
    assert smoothing.reach == 18
    assert list(smoothing.offsets) == [0, 6, 12, 18, 24, 30, 36]


def test_the_vde_drop_is_a_float32_value_in_score_or_spread_units():
    fixed = RoadRegion(0, 0.9, 0.1, 0.2, "score")
    assert fixed.outside_drop(5.0) == float(np.float32(0.1 + 0.2))  # the spread is unused
    scaled = RoadRegion(0, 0.9, 0.1, 0.2, "spread")
    assert scaled.outside_drop(0.3) == float(np.float32(np.float32(0.1 + 0.2) * np.float32(0.3)))
    assert scaled.outside_drop(0.0) == 0.0
