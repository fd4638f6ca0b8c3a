"""Ground truth of obstacles in the vehicle frame, as the synthetic drive writes it.

One JSON document per frame on the topic :data:`OBSTACLES_TOPIC` (``std_msgs/String``;
the bag time is the frame's header stamp) and one description file per drive bag
(:data:`DESCRIPTION_FILE`: the camera's mounting and intrinsics). Pure JSON: read without
the synthetic world (which lives in the source checkout's ``training/``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.objects.camera import DESCRIPTION_FILE as DESCRIPTION_FILE
from anomaly_seg_ros.objects.camera import mount_of as mount_of
from anomaly_seg_ros.objects.camera import read_description as read_description

#: ``std_msgs/String`` topic of the per-frame obstacle ground truth.
OBSTACLES_TOPIC = "/ground_truth/obstacles"
#: ``sensor_msgs/CameraInfo`` topic of a drive bag.
CAMERA_INFO_TOPIC = "/camera/camera_info"
#: Obstacles with fewer visible pixels do not count (SMIYC ObstacleTrack's instance size).
MIN_VISIBLE_PX = 10


@dataclass(frozen=True)
class TruthObstacle:
    """One obstacle of one frame, vehicle frame (x forward, y left), metres.

    :param index: the obstacle's number within its scene (stable over the scene's frames).
    :param scene: the scene (clip) it belongs to.
    :param kind: what it is (box, tyre, ...).
    :param forward_m: x of its nearest ground contact.
    :param left_m: y of the middle of its footprint.
    :param forward_far_m: x of the far end of its footprint.
    :param left_min_m: right end of its footprint (y).
    :param left_max_m: left end of its footprint (y).
    :param height_m: its top above the ground.
    :param visible_px: anomaly pixels of the frame inside its projected box.
    :param on_road: whether it stands on the road.
    """

    index: int
    scene: int
    kind: str
    forward_m: float
    left_m: float
    forward_far_m: float
    left_min_m: float
    left_max_m: float
    height_m: float
    visible_px: int
    on_road: bool = True

    @property
    def range_m(self) -> float:
        return math.hypot(self.forward_m, self.left_m)

    @property
    def visible(self) -> bool:
        return self.visible_px >= MIN_VISIBLE_PX


def obstacles_to_json(stamp_ns: int, obstacles: list[TruthObstacle]) -> str:
    """One frame's ground truth as the JSON the drive bag carries."""
    return json.dumps({"stamp_ns": stamp_ns, "obstacles": [asdict(o) for o in obstacles]})


def obstacles_from_json(text: str) -> tuple[int, list[TruthObstacle]]:
    """``(stamp_ns, obstacles)`` of one frame's JSON.

    :raises InputError: not the JSON :func:`obstacles_to_json` writes.
    """
    try:
        document = json.loads(text)
        return int(document["stamp_ns"]), [TruthObstacle(**o) for o in document["obstacles"]]
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(
            f"obstacle ground truth is not valid JSON of obstacles: {error}"
        ) from error
