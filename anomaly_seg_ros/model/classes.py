"""Class names and colours: the Cityscapes definitions, written here once.

A model's own classes and colours travel in its sidecar (``class_names``,
``class_colors``, written by export); these Cityscapes values are what export writes for a
Cityscapes model and the fallback for a sidecar without colours. They are the official
``cityscapesscripts.helpers.labels`` values (a test compares them), typed out so that the
car needs no cityscapesscripts, which has no rosdep key, at run time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: One RGB colour, 0..255 per channel.
Color = tuple[int, int, int]

#: The 19 Cityscapes evaluation classes, index = train ID.
CITYSCAPES_CLASSES = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)

#: Their colours, index = train ID.
CITYSCAPES_COLORS: tuple[Color, ...] = (
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (102, 102, 156),
    (190, 153, 153),
    (153, 153, 153),
    (250, 170, 30),
    (220, 220, 0),
    (107, 142, 35),
    (152, 251, 152),
    (70, 130, 180),
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
)

#: Colour of void / unknown train IDs.
VOID_COLOR: Color = (0, 0, 0)


def default_class_colors(num_classes: int) -> tuple[Color, ...]:
    """Colours for a model whose sidecar names none: Cityscapes by train ID, then void.

    :param num_classes: the model's class count.
    :return: one colour per class.
    """
    return tuple(
        CITYSCAPES_COLORS[index] if index < len(CITYSCAPES_COLORS) else VOID_COLOR
        for index in range(num_classes)
    )


def palette_table(colors: Sequence[Sequence[int]]) -> np.ndarray:
    """(256, 3) uint8 RGB lookup table: train ID → ``colors[id]``, the rest void.

    :param colors: at most 255 RGB triples, index = train ID.
    :raises ValueError: more than 255 colours, or a value outside 0..255.
    """
    table = np.zeros((256, 3), np.uint8)
    table[:] = VOID_COLOR
    if len(colors) > 255:
        raise ValueError(f"{len(colors)} class colours; a uint8 label map holds at most 255")
    if len(colors):
        values = np.asarray(colors, dtype=np.int64).reshape(len(colors), 3)
        if values.min() < 0 or values.max() > 255:
            raise ValueError("class colours must be RGB values in 0..255")
        table[: len(colors)] = values
    return table
