"""Pictures of a replay: an MP4 of every frame and a PNG contact sheet of a few.

Each frame becomes a panel of two images side by side: the node's own ``~/overlay`` (labels
blended over the camera, anomaly mask as heat with outline) and the anomaly score in the
inferno colour map on one fixed scale for the whole drive, with the ground-truth anomaly
outlined in green and the node's mask in white; a caption line names the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.pipeline.visualize import heat_colors, score_display_range
from demo.results import OutputFrame

TRUTH_COLOR = (40, 220, 60)
MASK_COLOR = (255, 255, 255)
CAPTION_HEIGHT = 20
LEGEND = (
    "left: node overlay (labels, anomaly mask)",
    "right: anomaly score (node threshold at 1/4 of the colour scale); green = true anomaly,"
    " white = node mask",
)


def _outline(picture: np.ndarray, mask: np.ndarray, color: tuple[int, int, int]) -> None:
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    cv2.drawContours(picture, contours, -1, color, 1)


def _caption(width: int, lines: Sequence[str]) -> np.ndarray:
    """Black bar with one text line per ``CAPTION_HEIGHT`` rows, shrunk to fit ``width``."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = 0.45
    widest = max(lines, key=len)
    while scale > 0.25 and cv2.getTextSize(widest, font, scale, 1)[0][0] > width - 8:
        scale -= 0.05
    bar = np.zeros((CAPTION_HEIGHT * len(lines), width, 3), np.uint8)
    for row, text in enumerate(lines):
        origin = (4, CAPTION_HEIGHT * (row + 1) - 6)
        cv2.putText(bar, text, origin, font, scale, (235, 235, 235), 1, cv2.LINE_AA)
    return bar


def frame_panel(frame: OutputFrame, score_range: tuple[float, float], caption: str) -> np.ndarray:
    """(CAPTION_HEIGHT + H, 2W, 3) uint8 RGB: caption over overlay | score heat."""
    heat = heat_colors(frame.score, *score_range)
    _outline(heat, frame.anomaly_label == 1, TRUTH_COLOR)
    _outline(heat, frame.mask, MASK_COLOR)
    images = np.concatenate([frame.overlay, heat], axis=1)
    return np.concatenate([_caption(images.shape[1], [caption]), images], axis=0)


def score_range(
    frames_scores: Sequence[np.ndarray], threshold: float | None = None
) -> tuple[float, float]:
    """One colour scale for a drive, from samples of its scores and the node threshold
    (which sits at a quarter of the scale, see :func:`score_display_range`)."""
    values = np.concatenate([np.ravel(s)[:: max(1, s.size // 4096)] for s in frames_scores])
    return score_display_range(values, threshold)


class VideoWriter:
    """MP4 (``mp4v``) of panels; the size is fixed by the first panel."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0

    def add(self, panel: np.ndarray) -> None:
        """Append one RGB panel.

        :raises InputError: OpenCV cannot write MP4 here (no video backend).
        """
        if self._writer is None:
            height, width = panel.shape[:2]
            fourcc = cv2.VideoWriter.fourcc(*"mp4v")
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
            if not self._writer.isOpened():
                raise InputError(
                    f"OpenCV cannot write {self.path} with the mp4v codec; install an "
                    "opencv-python build with FFmpeg"
                )
        self._writer.write(cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


def contact_sheet(
    panels: Sequence[np.ndarray], path: Path, columns: int = 2, scale: float = 0.5
) -> Path:
    """Lay ``panels`` (resized by ``scale``) out in a grid, row by row, under a legend, and
    write a PNG.

    :raises InputError: no panels, or the file cannot be written.
    """
    if not panels:
        raise InputError("no frames for the contact sheet: the output bag has none")
    resized = [
        cv2.resize(p, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for p in panels
    ]
    height = max(p.shape[0] for p in resized) + 2
    width = max(p.shape[1] for p in resized) + 2
    columns = max(1, min(columns, len(resized)))
    rows = -(-len(resized) // columns)
    grid = np.zeros((rows * height, columns * width, 3), np.uint8)
    for position, panel in enumerate(resized):
        top, left = (position // columns) * height, (position % columns) * width
        grid[top : top + panel.shape[0], left : left + panel.shape[1]] = panel
    sheet = np.concatenate([_caption(grid.shape[1], LEGEND), grid], axis=0)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise InputError(f"cannot write {path}")
    return path


def sheet_indices(count: int, rows: int) -> list[int]:
    """``rows`` frame indices spread evenly over ``count`` frames (first and last too)."""
    if count <= 0:
        return []
    return sorted({round(i) for i in np.linspace(0, count - 1, min(rows, count))})
