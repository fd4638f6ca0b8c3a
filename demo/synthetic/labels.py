"""Cityscapes label ids used by the synthetic world, taken from ``cityscapesscripts``."""

from __future__ import annotations

from cityscapesscripts.helpers.labels import name2label  # type: ignore[import-untyped]

ROAD = name2label["road"].id
SIDEWALK = name2label["sidewalk"].id
BUILDING = name2label["building"].id
WALL = name2label["wall"].id
FENCE = name2label["fence"].id
POLE = name2label["pole"].id
TRAFFIC_LIGHT = name2label["traffic light"].id
TRAFFIC_SIGN = name2label["traffic sign"].id
VEGETATION = name2label["vegetation"].id
TERRAIN = name2label["terrain"].id
SKY = name2label["sky"].id
PERSON = name2label["person"].id
RIDER = name2label["rider"].id
CAR = name2label["car"].id
TRUCK = name2label["truck"].id
BUS = name2label["bus"].id
BICYCLE = name2label["bicycle"].id
EGO_VEHICLE = name2label["ego vehicle"].id
UNLABELED = name2label["unlabeled"].id


#: Label ids the world draws (a frame's ``labelIds`` contain only these).
DRAWN_LABEL_IDS = (
    UNLABELED,
    EGO_VEHICLE,
    ROAD,
    SIDEWALK,
    BUILDING,
    WALL,
    FENCE,
    POLE,
    TRAFFIC_LIGHT,
    TRAFFIC_SIGN,
    VEGETATION,
    TERRAIN,
    SKY,
    PERSON,
    RIDER,
    CAR,
    TRUCK,
    BUS,
    BICYCLE,
)
