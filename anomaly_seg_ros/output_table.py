"""Every output the detector node publishes, in one table (``/diagnostics`` aside).

One row per topic ``~/<name>``: its ``publish_*`` switch, message type, encoding, what
makes it, its default, one line of description and whether ``anomaly-seg bag run`` can
write it. Everything else is made from this table: the Detector's on-request images, the
node's ``publish_*`` parameters (declaration, description, default, the settings' typed
access) and its publishers, the image packing and the object publishers, the
``bag run --outputs`` choices, ``config/detector.yaml``'s switches and the topic table of
docs/ros.md (``python -m anomaly_seg_ros.output_table``; a test holds the page equal).

A new output is one row here plus what makes it: a :class:`~anomaly_seg_ros.detector.Result`
field (``detect``/``render``), or a message builder of the object layer (``objects``:
:func:`anomaly_seg_ros.ros.object_messages.object_message`, and for ``bag run``
:class:`anomaly_seg_ros.io.object_bag.BagObjectOutputs`). Plain data: no imports of the
package, so every layer may read it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The message type of every image output.
IMAGE_MSGTYPE = "sensor_msgs/msg/Image"
#: What makes an output (-> how docs/ros.md says it): ``detect`` - every frame's result
#: (:meth:`Detector.detect`); ``render`` - an image drawn only when somebody wants it
#: (:meth:`Detector.render`); ``objects`` - the object layer (components, tracks, ground).
MAKERS = {"detect": "every frame", "render": "drawn on request", "objects": "object layer"}


@dataclass(frozen=True)
class Output:
    """One published topic.

    :param name: topic name relative to the node (``~/<name>``).
    :param toggle: the boolean parameter that switches it on and off.
    :param msgtype: the ROS message type (``package/msg/Name``).
    :param made_by: one of :data:`MAKERS`.
    :param description: one line: what a message holds.
    :param encoding: images: the ``sensor_msgs/Image`` encoding; else empty.
    :param field: images: the :class:`~anomaly_seg_ros.detector.Result` attribute it
        comes from; else empty.
    :param default: whether it is published by default.
    :param in_bag: whether ``anomaly-seg bag run`` can write it (its message type is in
        the rosbags typestore, or can be built from this repository's ``msgs/``).
    :param optional: where its message package may be missing on a car: how to get it
        (the node then says so once and publishes the others); empty = always there.
    """

    name: str
    toggle: str
    msgtype: str
    made_by: str
    description: str
    encoding: str = ""
    field: str = ""
    default: bool = True
    in_bag: bool = True
    optional: str = ""

    @property
    def on_request(self) -> bool:
        """Drawn only when wanted: the Detector builds it on request (``outputs=``)."""
        return self.made_by == "render"

    @property
    def is_image(self) -> bool:
        return self.made_by != "objects"

    @property
    def kind(self) -> str:
        """The message type in short, with the encoding for images: ``Image mono8``."""
        short = self.msgtype.rsplit("/", 1)[-1]
        return f"{short} {self.encoding}" if self.encoding else short

    @property
    def parameter_description(self) -> str:
        """The ``publish_*`` parameter's description."""
        where = ", where its message package is found" if self.optional else ""
        return f"publish ~/{self.name} ({self.kind}{where})"


def _image(
    name: str, toggle: str, encoding: str, made_by: str, field: str, description: str
) -> Output:
    return Output(name, toggle, IMAGE_MSGTYPE, made_by, description, encoding, field)


OUTPUTS: tuple[Output, ...] = (
    _image("labels", "publish_labels", "mono8", "detect", "labels", "train IDs 0…18 (255 = void)"),
    _image(
        "labels_color",
        "publish_labels_color",
        "rgb8",
        "render",
        "labels_color",
        "Cityscapes palette",
    ),
    _image(
        "anomaly_score",
        "publish_score",
        "32FC1",
        "detect",
        "score",
        "higher = more anomalous",
    ),
    _image("anomaly_mask", "publish_mask", "mono8", "detect", "mask", "0 / 255"),
    _image(
        "overlay",
        "publish_overlay",
        "rgb8",
        "render",
        "overlay",
        "image + label colours + anomaly heat and outlines, for RViz",
    ),
    Output(
        "objects",
        "publish_objects",
        "anomaly_seg_msgs/msg/AnomalyObjectArray",
        "objects",
        "confirmed objects: track id, box, scores, ground position, range and its sigma",
        optional="build msgs/anomaly_seg_msgs with colcon and source it",
    ),
    Output(
        "detections",
        "publish_detections",
        "vision_msgs/msg/Detection2DArray",
        "objects",
        "the objects' image boxes",
        in_bag=False,  # the rosbags typestore has no vision_msgs
        optional="install vision_msgs: rosdep key vision_msgs",
    ),
    Output(
        "obstacle_points",
        "publish_obstacle_points",
        "sensor_msgs/msg/PointCloud2",
        "objects",
        "the objects' ground contact points in vehicle_frame: x y z score id",
    ),
    Output(
        "object_markers",
        "publish_object_markers",
        "visualization_msgs/msg/MarkerArray",
        "objects",
        "RViz: footprint + `#id range score` per object, DELETE for dropped ones",
    ),
)

#: The image outputs (made by the Detector), in table order.
IMAGE_OUTPUTS: tuple[Output, ...] = tuple(o for o in OUTPUTS if o.is_image)
#: The object outputs (made by the object layer), in table order.
OBJECT_OUTPUTS: tuple[Output, ...] = tuple(o for o in OUTPUTS if not o.is_image)
#: Output names whose images the Detector builds only on request (``outputs=``).
ON_REQUEST: tuple[str, ...] = tuple(o.name for o in OUTPUTS if o.on_request)
#: What ``anomaly-seg bag run --outputs`` can write, images first.
BAG_OUTPUT_NAMES: tuple[str, ...] = tuple(o.name for o in OUTPUTS if o.in_bag)
#: The ``publish_*`` parameters, in table order.
TOGGLES: tuple[str, ...] = tuple(o.toggle for o in OUTPUTS)
#: The outputs published by default.
DEFAULT_PUBLISHED: frozenset[str] = frozenset(o.name for o in OUTPUTS if o.default)


def output(name: str) -> Output:
    """The row of ``name``.

    :raises KeyError: no such output (the message lists the valid names).
    """
    for row in OUTPUTS:
        if row.name == name:
            return row
    raise KeyError(f"no output {name!r}; valid: {', '.join(o.name for o in OUTPUTS)}")


def markdown_table() -> str:
    """The topic table of docs/ros.md, made from :data:`OUTPUTS`."""
    rows = [
        "| topic | type | switch (default) | made by | `bag run` | content |",
        "|---|---|---|---|---|---|",
    ]
    for row in OUTPUTS:
        kind = (
            f"Image `{row.encoding}`" if row.is_image else f"`{row.msgtype.replace('/msg/', '/')}`"
        )
        switch = f"`{row.toggle}` ({str(row.default).lower()})"
        content = row.description + (f" (where missing: {row.optional})" if row.optional else "")
        bag = "yes" if row.in_bag else "no"
        rows.append(
            f"| `~/{row.name}` | {kind} | {switch} | {MAKERS[row.made_by]} | {bag} | {content} |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
