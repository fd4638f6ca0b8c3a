"""Camera image → network input, and network-size maps → camera size."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from anomaly_seg_ros.config import ASPECT_POLICIES
from anomaly_seg_ros.errors import ConfigError, InputError
from anomaly_seg_ros.model.sidecar import ModelInfo
from anomaly_seg_ros.pipeline.strips import ThreadScratch

#: The largest image accepted anywhere (decoders, ``anomaly-seg detect``, the Detector):
#: an 8192×4096 camera fits exactly; more is a corrupt header or a wrong camera setting. The
#: node parameter ``max_image_pixels`` defaults to it and may only lower it.
MAX_IMAGE_PIXELS = 8192 * 4096


def check_size(height: int, width: int, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Reject empty and oversized images before any memory is touched.

    :param max_pixels: the limit, at most :data:`MAX_IMAGE_PIXELS`.
    :raises InputError: zero size or more than ``max_pixels`` pixels.
    """
    if height <= 0 or width <= 0:
        raise InputError(f"zero-size image ({height}x{width}); the camera sent an empty frame")
    if height * width > max_pixels:
        hint = (
            f"raise parameter max_image_pixels (at most {MAX_IMAGE_PIXELS}) if this size is "
            "expected"
            if max_pixels < MAX_IMAGE_PIXELS
            else f"{MAX_IMAGE_PIXELS} = 8192x4096 is the largest image anomaly_seg_ros accepts"
        )
        raise InputError(
            f"image of {height}x{width} = {height * width} pixels exceeds the limit of "
            f"{max_pixels}; {hint}"
        )


def check_rgb(image: object) -> np.ndarray:
    """Return ``image`` if it is an (H, W, 3) uint8 array, else raise :class:`InputError`."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise InputError(f"image must be uint8, got {image.dtype}")
    check_size(image.shape[0], image.shape[1])
    return image


_SCRATCH = ThreadScratch()

#: (top, left, height, width) of a rectangle in pixels.
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class ViewGeometry:
    """Which camera pixels the network sees, and where they lie in its input.

    :param camera_box: (top, left, height, width) of the seen part of the camera frame.
    :param network_box: (top, left, height, width) of the network input showing it; the
        rest of the input (``letterbox``) is padding.
    """

    camera_box: Box
    network_box: Box


def view_geometry(
    camera_size: tuple[int, int], network_size: tuple[int, int], aspect: str = "stretch"
) -> ViewGeometry:
    """The mapping between a camera frame and the network input for an aspect policy.

    ``stretch``: whole frame ↔ whole input (each axis scaled on its own). ``letterbox``:
    the whole frame, scaled by the smaller axis ratio, centred in the input. ``center_crop``:
    the central part of the frame with the input's aspect, scaled to the whole input.
    Input and outputs use the same boxes, so the outputs land exactly on the pixels the
    network saw.

    :param camera_size: (H, W) of the camera frame.
    :param network_size: (h, w) of the network input.
    :param aspect: one of :data:`~anomaly_seg_ros.config.ASPECT_POLICIES`.
    :raises ConfigError: an unknown policy.
    """
    (cam_h, cam_w), (net_h, net_w) = camera_size, network_size
    if aspect == "stretch":
        return ViewGeometry((0, 0, cam_h, cam_w), (0, 0, net_h, net_w))
    if aspect == "letterbox":
        scale = min(net_h / cam_h, net_w / cam_w)
        height = max(1, min(net_h, round(cam_h * scale)))
        width = max(1, min(net_w, round(cam_w * scale)))
        box = ((net_h - height) // 2, (net_w - width) // 2, height, width)
        return ViewGeometry((0, 0, cam_h, cam_w), box)
    if aspect == "center_crop":
        scale = max(net_h / cam_h, net_w / cam_w)
        height = max(1, min(cam_h, round(net_h / scale)))
        width = max(1, min(cam_w, round(net_w / scale)))
        box = ((cam_h - height) // 2, (cam_w - width) // 2, height, width)
        return ViewGeometry(box, (0, 0, net_h, net_w))
    raise ConfigError(f"aspect {aspect!r} unknown; valid: {', '.join(ASPECT_POLICIES)}")


def _crop(array: np.ndarray, box: Box) -> np.ndarray:
    top, left, height, width = box
    return array[top : top + height, left : left + width]


def resize_smooth(
    image: np.ndarray, size: tuple[int, int], dst: np.ndarray | None = None
) -> np.ndarray:
    """Resize an image or a float map without aliasing; ``size`` = (H, W).

    Shrinking averages the source pixels each output pixel covers (``INTER_AREA``), so a
    1920×1080 frame keeps its small objects at 1024×512 (bilinear without antialiasing
    samples 4 of every ~4 pixels and loses them; ``benchmarks/resize.py`` measures both
    against PIL's antialiased bilinear). Enlarging is bilinear. An axis that shrinks while
    the other grows is done in two passes, each with its own filter.

    :param image: (h, w[, C]) uint8 or float32.
    :param dst: array of the result's shape and dtype to write into, or None.
    """
    height, width = size
    if image.shape[:2] == (height, width):
        if dst is None:
            return image
        dst[...] = image
        return dst
    shrink_y, shrink_x = height <= image.shape[0], width <= image.shape[1]
    if shrink_y and shrink_x:
        return cv2.resize(image, (width, height), dst=dst, interpolation=cv2.INTER_AREA)
    if not shrink_y and not shrink_x:
        return cv2.resize(image, (width, height), dst=dst, interpolation=cv2.INTER_LINEAR)
    # Mixed: shrink the shrinking axis by area first, then enlarge the other bilinearly.
    partial = (image.shape[0], width) if shrink_x else (height, image.shape[1])
    first = cv2.resize(image, partial[::-1], interpolation=cv2.INTER_AREA)
    return cv2.resize(first, (width, height), dst=dst, interpolation=cv2.INTER_LINEAR)


def to_network_input(
    rgb: np.ndarray, info: ModelInfo, out: np.ndarray | None = None, aspect: str = "stretch"
) -> np.ndarray:
    """Resize to the model input, scale to [0, 1], normalize by mean/std, NCHW.

    Resize first (:func:`resize_smooth`, all three channels in one call, if the sizes
    differ; placed by :func:`view_geometry` for ``aspect``, letterbox padding filled with
    the normalisation mean, i.e. 0 after normalising), then one channel at a time at the
    network size: extract, ``x · 1/(255·std) − mean/std`` straight into the output plane.
    With ``out`` given this allocates nothing per frame (a fresh 1024×2048 blob costs more
    in page faults than the arithmetic).

    :param rgb: (H, W, 3) uint8 RGB at camera size.
    :param out: (1, 3, h, w) float32 C-contiguous array to write into, or None for a new one.
    :param aspect: one of :data:`~anomaly_seg_ros.config.ASPECT_POLICIES`.
    :return: (1, 3, h, w) float32 contiguous, h×w = ``info.input_size`` (``out`` if given).
    """
    height, width = info.input_size
    shape = (1, 3, height, width)
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of {shape}")
    geometry = view_geometry(rgb.shape[:2], (height, width), aspect)
    if geometry.network_box != (0, 0, height, width):  # letterbox: pad with the mean colour
        small = _SCRATCH.get("resized", (height, width, 3), np.uint8)
        small[...] = np.clip(np.round(np.asarray(info.mean) * 255.0), 0, 255).astype(np.uint8)
        view = _crop(small, geometry.network_box)
        resize_smooth(_crop(rgb, geometry.camera_box), view.shape[:2], dst=view)
        rgb = small
    elif rgb.shape[:2] != (height, width) or geometry.camera_box[2:] != rgb.shape[:2]:
        small = _SCRATCH.get("resized", (height, width, 3), np.uint8)
        rgb = resize_smooth(_crop(rgb, geometry.camera_box), (height, width), dst=small)
    channel = _SCRATCH.get("channel", (height, width), np.uint8)
    order = (2, 1, 0) if info.channel_order == "BGR" else (0, 1, 2)
    for index, source_channel in enumerate(order):
        cv2.extractChannel(rgb, source_channel, dst=channel)
        scale = 1.0 / (255.0 * info.std[index])
        offset = -info.mean[index] / info.std[index]
        cv2.addWeighted(channel, scale, channel, 0.0, offset, dst=out[0, index], dtype=cv2.CV_32F)
    return out


def to_camera(
    network_map: np.ndarray,
    size: tuple[int, int],
    aspect: str,
    fill: float | int | tuple[int, ...] | None,
    nearest: bool,
) -> np.ndarray:
    """A network-size map → camera size through :func:`view_geometry` (the inverse of the
    input's placement): the shown part of the input resized onto the seen camera pixels,
    ``fill`` on camera pixels the network never saw (``center_crop``).

    :param network_map: (h, w[, C]) map at the network input size.
    :param size: (H, W) camera (or label) size.
    :param fill: the value of unseen pixels; None = the lowest value of the seen ones.
    :param nearest: nearest neighbour (labels, colours) instead of :func:`resize_smooth`.
    """
    geometry = view_geometry(size, network_map.shape[:2], aspect)
    shown = _crop(network_map, geometry.network_box)
    seen = geometry.camera_box[2:]
    if nearest:
        if shown.shape[:2] != seen:
            # EXACT: pixel centre to pixel centre (plain INTER_NEAREST is off by half a pixel)
            shown = cv2.resize(
                np.ascontiguousarray(shown),
                (seen[1], seen[0]),
                interpolation=cv2.INTER_NEAREST_EXACT,
            )
    else:
        shown = resize_smooth(np.ascontiguousarray(shown), seen)
    if seen == tuple(size):
        return shown
    result = np.empty((*size, *network_map.shape[2:]), network_map.dtype)
    result[...] = np.min(shown) if fill is None else fill
    _crop(result, geometry.camera_box)[...] = shown
    return result


def camera_view_mask(
    network_size: tuple[int, int], size: tuple[int, int], aspect: str
) -> np.ndarray | None:
    """(H, W) bool, True on the camera pixels the network saw; None when it saw them all."""
    geometry = view_geometry(size, network_size, aspect)
    if geometry.camera_box[2:] == tuple(size):
        return None
    seen = np.zeros(size, bool)
    _crop(seen, geometry.camera_box)[...] = True
    return seen


def resize_labels(
    labels: np.ndarray, size: tuple[int, int], aspect: str = "stretch"
) -> np.ndarray:
    """(h, w[, 3]) uint8 → (H, W[, 3]) uint8, nearest pixel centre; ``size`` = (H, W).

    Camera pixels outside the network's view (``center_crop``) get 255 (void).
    """
    if labels.shape[:2] == tuple(size) and aspect == "stretch":
        return labels
    return to_camera(labels, size, aspect, 255, nearest=True)


def resize_score(score: np.ndarray, size: tuple[int, int], aspect: str = "stretch") -> np.ndarray:
    """(h, w) float32 → (H, W) float32 (:func:`resize_smooth`); ``size`` = (H, W).

    Camera pixels outside the network's view (``center_crop``) get the lowest score of
    the view, so they rank below every seen pixel and never stand out in a heat map.
    """
    if score.shape == tuple(size) and aspect == "stretch":
        return score
    return to_camera(score, size, aspect, None, nearest=False)
