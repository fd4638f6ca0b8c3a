"""Connected components of the anomaly mask → :class:`AnomalyObject` entries.

8-connected components, as the node's mask (``postprocess.anomaly_mask``) and the
Segment-Me-If-You-Can component metrics define them. Each costs a crop of its own box, so
a frame's cost is one ``cv2.connectedComponentsWithStats`` plus the kept components' boxes;
at most ``max_components`` (the largest) are examined.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from anomaly_seg_ros.objects.ground import GroundPosition


@dataclass(frozen=True)
class AnomalyObject:
    """One connected anomaly component of a frame.

    :param box: (x_min, y_min, x_max, y_max), inclusive, camera pixels.
    :param area_px: its pixels.
    :param peak_score: highest anomaly score on it.
    :param mean_score: mean anomaly score on it.
    :param on_road_fraction: share of its bottom contact pixels inside the road region
        (NaN without a road region).
    :param touches_border: its box touches the image border (it may be cut off: its
        extent and, at the bottom border, its position are then a bound, not a value).
    :param ground: its ground position, or None (no camera, no mount, at/above horizon).
    """

    box: tuple[int, int, int, int]
    area_px: int
    peak_score: float
    mean_score: float
    on_road_fraction: float
    touches_border: bool
    ground: GroundPosition | None

    @property
    def centre(self) -> tuple[float, float]:
        """Centre of the box, (column, row)."""
        x0, y0, x1, y1 = self.box
        return 0.5 * (x0 + x1), 0.5 * (y0 + y1)


@dataclass(frozen=True)
class Component:
    """A component before it has a ground position.

    :param contact: (N, 2) float64 (column, row + 0.5): the lower edge of its lowest
        pixel in every column it covers.
    """

    box: tuple[int, int, int, int]
    area_px: int
    peak_score: float
    mean_score: float
    on_road_fraction: float
    contact: np.ndarray

    def touches_border(self, height: int, width: int) -> bool:
        x0, y0, x1, y1 = self.box
        return x0 == 0 or y0 == 0 or x1 == width - 1 or y1 == height - 1


def mask_components(
    mask: np.ndarray,
    score: np.ndarray,
    road_region: np.ndarray | None,
    min_area_px: int,
    max_components: int,
) -> tuple[list[Component], int]:
    """The components of ``mask`` with at least ``min_area_px`` pixels, largest first.

    :param mask: (H, W) bool anomaly mask.
    :param score: (H, W) float32 anomaly score.
    :param road_region: (H, W) bool road region, or None.
    :return: ``(components, count)``: at most ``max_components`` components and how many
        reached ``min_area_px`` in all (more than returned = some were left out).
    """
    if not mask.any():
        return [], 0
    _, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.view(np.uint8), connectivity=8, ltype=cv2.CV_32S
    )
    areas = stats[1:, cv2.CC_STAT_AREA]
    candidates = np.flatnonzero(areas >= max(min_area_px, 1)) + 1
    total = len(candidates)
    if total > max_components:
        # The largest first; ties by label so the choice does not depend on the sort.
        order = np.lexsort((candidates, -stats[candidates, cv2.CC_STAT_AREA]))
        candidates = candidates[order[:max_components]]
    else:
        candidates = candidates[np.argsort(-stats[candidates, cv2.CC_STAT_AREA], kind="stable")]
    components = []
    for index in candidates:
        x, y, w, h, area = (int(v) for v in stats[index])
        own = labels[y : y + h, x : x + w] == index
        values = score[y : y + h, x : x + w][own]
        columns = np.flatnonzero(own.any(axis=0))
        lowest = h - 1 - np.argmax(own[::-1, columns], axis=0)
        rows = y + lowest
        if road_region is None:
            on_road = float("nan")
        else:
            on_road = float(np.mean(road_region[rows, x + columns]))
        contact = np.stack([x + columns, rows + 0.5], axis=1).astype(np.float64)
        components.append(
            Component(
                box=(x, y, x + w - 1, y + h - 1),
                area_px=area,
                peak_score=float(values.max()),
                mean_score=float(values.mean()),
                on_road_fraction=on_road,
                contact=contact,
            )
        )
    return components, total
