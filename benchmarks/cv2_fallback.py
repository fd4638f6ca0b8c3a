"""A stand-in for the OpenCV calls of ``Detector.detect``, in numpy (and torch for resizing).

For ``benchmarks/gpu.py`` on a GPU machine that has torch but no OpenCV: it is installed as
``cv2`` only when ``import cv2`` fails, so the package's host stages run and are timed. It
covers what preprocessing, scores, refinement (boundary suppression, dilated smoothing,
VDE), resizing and the mask threshold call, with OpenCV's semantics (saturation,
replicated borders; a division by 0 gives 0, where OpenCV 5 gives inf, in pixels the
refinement never reads) but not its last bits (float sums in
another order, torch's bilinear resize): host timings measured through it are numpy's, not
OpenCV's, and gpu.py says so. Anything else (drawing, contours, connected components for
``min_area``) raises one line naming the call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Constants the covered calls and the package's modules read.
MORPH_RECT, MORPH_CROSS = 0, 1
BORDER_CONSTANT, BORDER_REPLICATE = 0, 1
CMP_EQ, CMP_GT, CMP_GE = 0, 1, 2
CV_32F = 5
INTER_NEAREST, INTER_LINEAR, INTER_AREA, INTER_NEAREST_EXACT = 0, 1, 3, 6
CC_STAT_AREA = 4
FALLBACK = True  # lets gpu.py tell this module from OpenCV


def __getattr__(name: str) -> Any:
    raise AttributeError(
        f"cv2.{name} is not in benchmarks/cv2_fallback.py (OpenCV is not installed); "
        "install opencv-python-headless for it"
    )


def _out(result: np.ndarray, dst: np.ndarray | None) -> np.ndarray:
    if dst is None:
        return result
    np.copyto(dst, result.reshape(dst.shape), casting="unsafe")
    return dst


def _saturate(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        limits = np.iinfo(dtype)
        return np.clip(np.rint(values), limits.min, limits.max).astype(dtype)
    return values.astype(dtype)


def getNumThreads() -> int:  # noqa: N802  (OpenCV's names)
    return 1


def setNumThreads(count: int) -> None:  # noqa: N802
    return None


def getStructuringElement(shape: int, size: tuple[int, int]) -> np.ndarray:  # noqa: N802
    width, height = size
    kernel = np.ones((height, width), np.uint8)
    if shape == MORPH_CROSS:
        kernel[:] = 0
        kernel[height // 2, :] = 1
        kernel[:, width // 2] = 1
    return kernel


def _windows(src: np.ndarray, kernel: np.ndarray) -> list[np.ndarray]:
    """Views of ``src`` (edge-replicated) shifted to each nonzero kernel position."""
    height, width = kernel.shape
    top, left = height // 2, width // 2
    padded = np.pad(src, ((top, height - 1 - top), (left, width - 1 - left)), mode="edge")
    rows, cols = src.shape[:2]
    return [
        padded[y : y + rows, x : x + cols]
        for y in range(height)
        for x in range(width)
        if kernel[y, x]
    ]


def dilate(src: np.ndarray, kernel: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    # Replicated borders give the same result as OpenCV's "border never wins" default for
    # a kernel that contains its centre.
    return _out(np.maximum.reduce(_windows(src, kernel)), dst)


def erode(src: np.ndarray, kernel: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    return _out(np.minimum.reduce(_windows(src, kernel)), dst)


def filter2D(  # noqa: N802
    src: np.ndarray,
    ddepth: int,
    kernel: np.ndarray,
    dst: np.ndarray | None = None,
    borderType: int = BORDER_REPLICATE,  # noqa: N803
) -> np.ndarray:
    height, width = kernel.shape
    total = np.zeros(src.shape, np.float64)
    for (y, x), view in zip(np.ndindex(height, width), _windows(src, np.ones_like(kernel))):
        total += float(kernel[y, x]) * view
    return _out(_saturate(total, src.dtype), dst)


def boxFilter(  # noqa: N802
    src: np.ndarray,
    ddepth: int,
    ksize: tuple[int, int],
    dst: np.ndarray | None = None,
    normalize: bool = True,
    borderType: int = BORDER_REPLICATE,  # noqa: N803
) -> np.ndarray:
    kernel = np.ones((ksize[1], ksize[0]), np.float64)
    if normalize:
        kernel /= kernel.size
    return filter2D(src, ddepth, kernel, dst, borderType)


def compare(src1: np.ndarray, src2: Any, cmpop: int, dst: np.ndarray | None = None) -> np.ndarray:
    operation = {CMP_EQ: np.equal, CMP_GT: np.greater, CMP_GE: np.greater_equal}[cmpop]
    return _out(operation(src1, src2).astype(np.uint8) * np.uint8(255), dst)


def bitwise_and(src1: np.ndarray, src2: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    return _out(np.bitwise_and(src1, src2), dst)


def add(src1: np.ndarray, src2: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    total = np.add(src1, src2, dtype=np.float64)
    return _out(_saturate(total, np.asarray(src1).dtype), dst)


def subtract(src1: np.ndarray, src2: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    difference = np.subtract(src1, src2, dtype=np.float64)
    return _out(_saturate(difference, np.asarray(src1).dtype), dst)


def divide(
    src1: np.ndarray, src2: np.ndarray, dst: np.ndarray | None = None, dtype: int = -1
) -> np.ndarray:
    numerator = np.asarray(src1, np.float64)
    denominator = np.asarray(src2, np.float64)
    quotient = np.divide(
        numerator, denominator, out=np.zeros_like(numerator), where=denominator != 0
    )
    target = np.float32 if dtype == CV_32F else np.asarray(src1).dtype
    return _out(_saturate(quotient, np.dtype(target)), dst)


def scaleAdd(  # noqa: N802
    src1: np.ndarray, alpha: float, src2: np.ndarray, dst: np.ndarray | None = None
) -> np.ndarray:
    return _out((src1 * np.float32(alpha) + src2).astype(src1.dtype), dst)


def addWeighted(  # noqa: N802
    src1: np.ndarray,
    alpha: float,
    src2: np.ndarray,
    beta: float,
    gamma: float,
    dst: np.ndarray | None = None,
    dtype: int = -1,
) -> np.ndarray:
    total = src1 * np.float64(alpha) + src2 * np.float64(beta) + gamma
    target = np.dtype(np.float32) if dtype == CV_32F else np.asarray(src1).dtype
    return _out(_saturate(total, target), dst)


def copyTo(src: np.ndarray, mask: np.ndarray, dst: np.ndarray) -> np.ndarray:  # noqa: N802
    where = np.asarray(mask).astype(bool)
    if src.ndim == 3 and where.ndim == 2:
        where = where[..., None]
    np.copyto(dst, src, where=where)
    return dst


def countNonZero(src: np.ndarray) -> int:  # noqa: N802
    return int(np.count_nonzero(src))


def checkRange(src: np.ndarray) -> tuple[bool, tuple[int, int]]:  # noqa: N802
    """(every value finite, position of the first that is not) as OpenCV returns it."""
    bad = np.flatnonzero(~np.isfinite(src))
    if bad.size == 0:
        return True, (0, 0)
    row, column = np.unravel_index(bad[0], src.shape[:2])
    return False, (int(column), int(row))


def meanStdDev(  # noqa: N802
    src: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) standard deviation in float64, over ``mask != 0`` if given."""
    values = src.astype(np.float64)
    if mask is not None:
        values = values[mask.astype(bool)]
    return np.array([[values.mean()]]), np.array([[values.std()]])


def copyMakeBorder(  # noqa: N802
    src: np.ndarray,
    top: int,
    bottom: int,
    left: int,
    right: int,
    borderType: int,  # noqa: N803
) -> np.ndarray:
    if borderType != BORDER_REPLICATE:
        raise NotImplementedError("cv2_fallback.copyMakeBorder: BORDER_REPLICATE only")
    return np.pad(src, ((top, bottom), (left, right)), mode="edge")


def transpose(src: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(src.T)


def extractChannel(src: np.ndarray, coi: int, dst: np.ndarray | None = None) -> np.ndarray:  # noqa: N802
    return _out(np.ascontiguousarray(src[..., coi]), dst)


def LUT(src: np.ndarray, lut: np.ndarray) -> np.ndarray:  # noqa: N802
    return np.asarray(lut).reshape(-1)[src]


def resize(
    src: np.ndarray,
    dsize: tuple[int, int],
    dst: np.ndarray | None = None,
    interpolation: int = INTER_LINEAR,
) -> np.ndarray:
    """OpenCV's resize with half-pixel centres: bilinear (torch, no antialiasing), area
    averaging for a shrink (torch's ``area``: OpenCV's INTER_AREA exactly for integer
    factors, close otherwise), the nearest source pixel ``floor(x * in / out)``, or for
    INTER_NEAREST_EXACT the pixel whose centre is nearest, ``floor((x + 0.5) * in / out)``."""
    width, height = dsize
    if interpolation in (INTER_NEAREST, INTER_NEAREST_EXACT):
        half = 0.5 if interpolation == INTER_NEAREST_EXACT else 0.0
        rows = np.floor((np.arange(height) + half) * src.shape[0] / height).astype(np.intp)
        cols = np.floor((np.arange(width) + half) * src.shape[1] / width).astype(np.intp)
        rows, cols = np.minimum(rows, src.shape[0] - 1), np.minimum(cols, src.shape[1] - 1)
        return _out(src[rows[:, None], cols[None, :]], dst)
    import torch

    planes = torch.from_numpy(np.ascontiguousarray(src, np.float32))
    planes = planes[None, None] if src.ndim == 2 else planes.permute(2, 0, 1)[None]
    shrinking = height <= src.shape[0] and width <= src.shape[1]
    if interpolation == INTER_AREA and shrinking:
        resized = torch.nn.functional.interpolate(planes, size=(height, width), mode="area")[0]
    else:
        resized = torch.nn.functional.interpolate(
            planes, size=(height, width), mode="bilinear", align_corners=False
        )[0]
    values = resized[0] if src.ndim == 2 else resized.permute(1, 2, 0)
    return _out(_saturate(values.numpy().astype(np.float64), src.dtype), dst)
