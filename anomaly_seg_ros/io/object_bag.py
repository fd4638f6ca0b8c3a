"""The object outputs of ``anomaly-seg bag run``: the object layer over a bag's frames,
written as the node publishes them (``obstacle_points``, ``object_markers`` and, where
the message type can be built from ``msgs/anomaly_seg_msgs``, ``objects``).

Pure ``rosbags``: the messages are built from the plain data of
:mod:`anomaly_seg_ros.io.object_messages` (one definition of the cloud layout and the
markers), in :func:`~anomaly_seg_ros.io.bags.typestore`'s types; the typed object list's
type lives in a separate typestore (:func:`object_typestore`).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.interfaces import Nodetype
from rosbags.typesys import get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from anomaly_seg_ros.errors import InputError
from anomaly_seg_ros.io.bags import CAMERA_INFO_TYPE, WRITE_DISTRO, deserialize, typestore
from anomaly_seg_ros.io.object_messages import (
    BAG_OBJECT_NAMES,
    CLOUD_DTYPE,
    CLOUD_FIELDS,
    CLOUD_OFFSETS,
    NESTED_OBJECT_FIELDS,
    OBJECT_TOPICS,
    MarkerSpec,
    anomaly_object_fields,
    camera_info_topic,
    object_markers,
    obstacle_points,
)
from anomaly_seg_ros.objects import (
    NO_CAMERA_WARNING,
    CameraInfoError,
    CameraModel,
    CameraMount,
    ObjectFrame,
    ObjectLayer,
    ObjectSettings,
    Track,
    camera_model_from_message,
)
from anomaly_seg_ros.objects.camera import camera_info_key, mount_of, read_description

LOGGER = logging.getLogger(__name__)

#: Message type of each object output (``OBJECT_TOPICS``).
OBJECT_TYPES = {topic.name: topic.msgtype for topic in OBJECT_TOPICS}
#: The vehicle frame when no mount names one (the node's ``vehicle_frame`` default).
DEFAULT_VEHICLE_FRAME = "base_link"
#: Package folder of the interface definitions, in a source checkout.
MSG_PACKAGE = "anomaly_seg_msgs"
_SOURCE_MSGS = Path(__file__).resolve().parents[2] / "msgs" / MSG_PACKAGE / "msg"

_BASE_DEFAULTS: dict[str, Any] = {"bool": False, "string": "", "wstring": ""}
_NUMPY_TYPES = {
    "int8": np.int8, "uint8": np.uint8, "byte": np.uint8, "char": np.uint8,
    "octet": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32,
    "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64, "float32": np.float32,
    "float64": np.float64, "bool": np.bool_,
}  # fmt: skip


def _default(store: Typestore, node: tuple[Any, Any]) -> Any:
    kind, detail = node
    if kind == Nodetype.BASE:
        name = detail[0]
        return _BASE_DEFAULTS.get(name, 0.0 if name.startswith("float") else 0)
    if kind == Nodetype.NAME:
        return new_message(store, detail)
    element, length = detail
    if element[0] == Nodetype.BASE and element[1][0] in _NUMPY_TYPES:
        return np.zeros(length if kind == Nodetype.ARRAY else 0, _NUMPY_TYPES[element[1][0]])
    return [_default(store, element) for _ in range(length if kind == Nodetype.ARRAY else 0)]


def new_message(store: Typestore, msgtype: str, **values: Any) -> Any:
    """A ``rosbags`` message of ``msgtype`` with ``values``, every other field at its
    ROS default (zero, empty, nested defaults), as ``rclpy`` message classes make them."""
    _, fields = store.fielddefs[msgtype]
    arguments = {name: values.pop(name) if name in values else _default(store, node)
                 for name, node in fields}  # fmt: skip
    if values:
        raise TypeError(f"{msgtype} has no fields {sorted(values)}")
    return store.types[msgtype](**arguments)


def cloud_message(store: Typestore, confirmed: Sequence[Track], header: Any) -> Any:
    """``sensor_msgs/PointCloud2`` of the confirmed tracks' ground points (the node's
    ``~/obstacle_points``: fields x y z score id of
    :data:`~anomaly_seg_ros.io.object_messages.CLOUD_FIELDS`; empty when none)."""
    points = obstacle_points(confirmed)
    fields = [
        new_message(
            store,
            "sensor_msgs/msg/PointField",
            name=name,
            offset=CLOUD_OFFSETS[name],
            datatype=kind,
            count=1,
        )
        for name, _, kind in CLOUD_FIELDS
    ]
    return new_message(
        store,
        OBJECT_TYPES["obstacle_points"],
        header=header,
        height=1,
        width=len(points),
        fields=fields,
        is_bigendian=False,
        point_step=CLOUD_DTYPE.itemsize,
        row_step=CLOUD_DTYPE.itemsize * len(points),
        data=np.frombuffer(points.tobytes(), np.uint8).copy(),
        is_dense=True,
    )


def cloud_points(message: Any) -> np.ndarray:
    """The points of a cloud :func:`cloud_message` wrote, as :data:`CLOUD_DTYPE`.

    :raises InputError: its fields are not the obstacle cloud's.
    """
    fields = [(f.name, int(f.offset), int(f.datatype)) for f in message.fields]
    expected = [(name, CLOUD_OFFSETS[name], kind) for name, _, kind in CLOUD_FIELDS]
    if fields != expected or int(message.point_step) != CLOUD_DTYPE.itemsize:
        raise InputError(f"not an obstacle cloud: fields {fields}, expected {expected}")
    return np.frombuffer(np.asarray(message.data, np.uint8).tobytes(), CLOUD_DTYPE)


def markers_message(store: Typestore, specs: Sequence[MarkerSpec], header: Any) -> Any:
    """``visualization_msgs/MarkerArray`` of :func:`object_markers`' specs (cylinder,
    view-facing text, or DELETE), all with ``header``."""
    marker_type = "visualization_msgs/msg/Marker"
    marker_class: Any = store.types[marker_type]  # its constants are class attributes
    markers = []
    for spec in specs:
        values: dict[str, Any] = {
            "header": header,
            "ns": spec.namespace,
            "id": int(spec.marker_id),
            "action": marker_class.ADD if spec.add else marker_class.DELETE,
        }
        if spec.add:
            x, y, z = spec.position
            point = new_message(store, "geometry_msgs/msg/Point", x=x, y=y, z=z)
            rotation = new_message(store, "geometry_msgs/msg/Quaternion", w=1.0)
            red, green, blue, alpha = spec.color
            scale_x, scale_y, scale_z = spec.scale
            values.update(
                type=marker_class.TEXT_VIEW_FACING if spec.text else marker_class.CYLINDER,
                pose=new_message(
                    store, "geometry_msgs/msg/Pose", position=point, orientation=rotation
                ),
                scale=new_message(
                    store, "geometry_msgs/msg/Vector3", x=scale_x, y=scale_y, z=scale_z
                ),
                color=new_message(
                    store, "std_msgs/msg/ColorRGBA", r=red, g=green, b=blue, a=alpha
                ),
                text=spec.text,
            )
        markers.append(new_message(store, marker_type, **values))
    return new_message(store, OBJECT_TYPES["object_markers"], markers=markers)


def msg_folders() -> list[Path]:
    """Where ``anomaly_seg_msgs``' ``.msg`` files may be: the source checkout, then the
    ``share/anomaly_seg_msgs/msg`` of every colcon/ament prefix."""
    prefixes = os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
    shares = [Path(p) / "share" / MSG_PACKAGE / "msg" for p in prefixes if p]
    return [folder for folder in (_SOURCE_MSGS, *shares) if folder.is_dir()]


@functools.lru_cache(maxsize=1)
def object_typestore() -> tuple[Typestore | None, str]:
    """A typestore of :data:`~anomaly_seg_ros.io.bags.WRITE_DISTRO` plus
    ``anomaly_seg_msgs`` from its ``.msg`` files (separate from the shared
    :func:`~anomaly_seg_ros.io.bags.typestore`, which stays the distro's).

    :return: (the store, "") or (None, why there is none).
    """
    folders = msg_folders()
    if not folders:
        return None, f"no {MSG_PACKAGE}/msg/*.msg found (source checkout or AMENT_PREFIX_PATH)"
    store = get_typestore(WRITE_DISTRO)
    types: dict[str, Any] = {}
    try:
        for path in sorted(folders[0].glob("*.msg")):
            types.update(get_types_from_msg(path.read_text(), f"{MSG_PACKAGE}/msg/{path.stem}"))
        store.register(types)
    except Exception as error:  # rosbags' parser errors have no common base
        return None, f"cannot read {folders[0]}: {type(error).__name__}: {error}"
    if OBJECT_TYPES["objects"] not in store.types:
        return None, f"{folders[0]} has no {OBJECT_TYPES['objects']}"
    return store, ""


def object_array_message(
    store: Typestore, frame: ObjectFrame, header: Any, vehicle_frame: str
) -> Any:
    """``anomaly_seg_msgs/AnomalyObjectArray`` of the confirmed tracks (the node's
    ``~/objects``: header = the camera stamp in the vehicle frame, camera_frame_id = the
    image's frame; fields as ``msgs/anomaly_seg_msgs/msg/AnomalyObject.msg`` says)."""
    objects = []
    for track in frame.confirmed:
        values = anomaly_object_fields(track)
        for name, msgtype in NESTED_OBJECT_FIELDS.items():
            fields = values.pop(name)
            if fields is not None:  # None: the type's default (no velocity)
                values[name] = new_message(store, msgtype, **fields)
        objects.append(new_message(store, f"{MSG_PACKAGE}/msg/AnomalyObject", **values))
    return new_message(
        store,
        OBJECT_TYPES["objects"],
        header=with_frame(store, header, vehicle_frame),
        camera_frame_id=header.frame_id,
        objects=objects,
        dropped_ids=np.asarray(frame.dropped_ids, np.uint32),
    )


def with_frame(store: Typestore, header: Any, frame_id: str) -> Any:
    """``header``'s stamp with another frame id."""
    return new_message(store, "std_msgs/msg/Header", stamp=header.stamp, frame_id=frame_id)


def resolve_mount(mount: CameraMount | None, bag: str | Path) -> CameraMount | None:
    """``mount``, else the one in the bag folder's ``description.json`` (a synthetic
    drive's), else None.

    :raises InputError: a description without a valid mount.
    """
    if mount is not None:
        return mount
    description = read_description(bag) if Path(bag).is_dir() else None
    return mount_of(description) if description is not None else None


class BagObjectOutputs:
    """The object layer of one ``bag run``: CameraInfo read from the bag, one frame at a
    time, its messages serialised.

    :param reader: the open input bag.
    :param bag: its path (for ``description.json`` and the warnings).
    :param image_topic: the processed image topic.
    :param names: object outputs to write (of :data:`BAG_OBJECT_NAMES`).
    :param mount: the camera mount; None = the bag's ``description.json``, if any.
    :param settings: the object layer's settings.
    :param info_topic: the CameraInfo topic; None = the one beside ``image_topic``.
    :param threshold: the mask threshold (the markers' colour scale starts there).
    """

    def __init__(
        self,
        reader: Any,
        bag: str | Path,
        image_topic: str,
        names: Sequence[str],
        mount: CameraMount | None,
        settings: ObjectSettings,
        info_topic: str | None,
        threshold: float,
    ) -> None:
        self.names = [name for name in BAG_OBJECT_NAMES if name in set(names)]
        self.store = typestore()
        self.object_store: Typestore | None = None
        if "objects" in self.names:
            self.object_store, _ = object_typestore()
        self.threshold = threshold
        mount = resolve_mount(mount, bag)
        info_topic = info_topic or camera_info_topic(image_topic)
        connections = [
            c
            for c in reader.connections
            if c.topic == info_topic and c.msgtype == CAMERA_INFO_TYPE
        ]
        missing = []
        if mount is None:
            missing.append("no camera mount (--mount, or the bag folder's description.json)")
        if not connections:
            missing.append(f"no {CAMERA_INFO_TYPE} on {info_topic} (--camera-info-topic)")
        if missing:
            LOGGER.warning("objects get no ground position: %s", "; ".join(missing))
        self.info_topic = info_topic
        self.vehicle_frame = mount.vehicle_frame if mount is not None else DEFAULT_VEHICLE_FRAME
        # without both, the layer is told of no mount: the line above said why
        self.layer = ObjectLayer(settings, mount if not missing else None)
        self.cameras = self._calibrations(reader, connections) if not missing else []
        self._next = 0
        self._told: set[str] = set()

    def _calibrations(self, reader: Any, connections: list[Any]) -> list[tuple[int, Any]]:
        """(bag time, camera model or the reason there is none) at each change."""
        changes: list[tuple[int, Any]] = []
        last: tuple[Any, ...] | None = None
        for connection, timestamp, raw in reader.messages(connections=connections):
            try:
                info = deserialize(reader, raw, connection, timestamp)
            except InputError as error:
                changes.append((timestamp, str(error)))
                last = None
                continue
            key = camera_info_key(info)
            if key == last:
                continue
            last = key
            try:
                changes.append((timestamp, camera_model_from_message(info)))
            except CameraInfoError as error:
                changes.append((timestamp, f"bad CameraInfo on {self.info_topic}: {error}"))
        return changes

    def connections(self, writer: Any, prefix: str) -> dict[str, Any]:
        """Add the output connections to ``writer``: name -> connection."""
        stores = {name: self.store for name in self.names if name != "objects"}
        if self.object_store is not None:
            stores["objects"] = self.object_store
        return {
            name: writer.add_connection(
                f"{prefix.rstrip('/')}/{name}", OBJECT_TYPES[name], typestore=stores[name]
            )
            for name in self.names
            if name in stores
        }

    def _camera_until(self, timestamp: int) -> str | None:
        """Give the layer the latest calibration at or before ``timestamp``; the reason
        when the current one is unusable."""
        while self._next < len(self.cameras) and self.cameras[self._next][0] <= timestamp:
            entry = self.cameras[self._next][1]
            self.layer.set_camera(entry if isinstance(entry, CameraModel) else None)
            self._next += 1
        if self._next == 0 or isinstance(self.cameras[self._next - 1][1], CameraModel):
            return None
        reason: str = self.cameras[self._next - 1][1]
        return reason

    def frame(
        self,
        mask: np.ndarray,
        score: np.ndarray,
        road_region: np.ndarray | None,
        header: Any,
        timestamp: int,
    ) -> dict[str, bytes]:
        """One frame through the layer: output name -> serialised message.

        :param header: the camera image's header (its stamp goes on every message).
        :param timestamp: the image's bag time (which CameraInfo holds).
        """
        bad = self._camera_until(timestamp)
        stamp_ns = int(header.stamp.sec) * 10**9 + int(header.stamp.nanosec)
        result = self.layer.process(mask, score, road_region, stamp_ns)
        warnings = list(result.warnings)
        if bad is not None:  # named already: the layer's generic "no intrinsics" is not news
            warnings = [w for w in warnings if w != NO_CAMERA_WARNING]
            if bad not in self._told:
                self._told.add(bad)
                warnings.insert(0, f"{bad}; objects get no position")
        for line in warnings:
            LOGGER.warning("objects at bag time %d ns: %s", timestamp, line)
        vehicle = with_frame(self.store, header, self.vehicle_frame)
        out: dict[str, bytes] = {}
        for name in self.names:
            if name == "obstacle_points":
                message = cloud_message(self.store, result.confirmed, vehicle)
            elif name == "object_markers":
                specs = object_markers(result.confirmed, result.dropped_ids, self.threshold)
                message = markers_message(self.store, specs, vehicle)
            elif self.object_store is not None:
                store = self.object_store
                message = object_array_message(store, result, header, self.vehicle_frame)
                out[name] = bytes(store.serialize_cdr(message, OBJECT_TYPES[name]))
                continue
            else:
                continue
            out[name] = bytes(self.store.serialize_cdr(message, OBJECT_TYPES[name]))
        return out
