"""Generated rclpy messages built by filling their slots, for the per-instance messages of every frame.

Why: a generated constructor imports and builds every nested default and runs every field's setter.
An ``Instance`` (two Images with their Headers, a Pose, three Vector3 and Points, two RegionOfInterests)
costs 35-40 us that way, about a third of a frame's message conversion at 10 instances; filled slot by
slot it costs 5-7 us. The slot layout is rosidl_generator_py's: ``_<field>`` per field, plus
``_check_fields`` from Jazzy on (where the constructor reads ROS_PYTHON_CHECK_FIELDS; the values here
are made with the field types already). ``SLOTS_MATCH`` checks at import that a message built here
equals the generated constructor's and survives serialisation; where it does not (a rosidl that
lays its messages out differently), every builder uses the generated constructors instead.
"""

from __future__ import annotations

import array
from typing import Any, TypeVar

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, Quaternion
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, RegionOfInterest
from std_msgs.msg import Header

from robot_instseg.ros.compat import CHECK_FIELDS_SLOT
from robot_instseg_msgs.msg import Instance

M = TypeVar("M")


def _blank(cls: type[M]) -> M:
    """A ``cls`` message with no field set yet (its setters' checks off, as the constructor leaves them by default)."""
    msg = cls.__new__(cls)  # type: ignore[call-overload]
    if CHECK_FIELDS_SLOT:
        msg._check_fields = False
    return msg


def _fill_slots(cls: type[M], fields: dict[str, Any]) -> M:
    """A ``cls`` message holding ``fields``, which name every field of it, set slot by slot."""
    msg = _blank(cls)
    for name, value in fields.items():
        setattr(msg, "_" + name, value)
    return msg


def _generated(cls: type[M], fields: dict[str, Any]) -> M:
    return cls(**fields)  # type: ignore[call-arg]


def _slots_match() -> bool:
    """Whether this rosidl's messages are laid out as ``_fill_slots`` fills them: an Image with a Header, a Pose and
    an Instance (its number sequence as an array.array), built both ways, equal and serialise alike."""
    try:
        header = _fill_slots(Header, {"stamp": _fill_slots(Time, {"sec": 3, "nanosec": 4}), "frame_id": "f"})
        image = _fill_slots(Image, {"header": header, "height": 1, "width": 2, "encoding": "mono8", "is_bigendian": 0,
                                    "step": 2, "data": array.array("B", b"\x00\xff")})
        pose = _fill_slots(Pose, {"position": _fill_slots(Point, {"x": 1.0, "y": 2.0, "z": 3.0}),
                                  "orientation": _fill_slots(Quaternion, {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0})})
        reference = Image(header=Header(stamp=Time(sec=3, nanosec=4), frame_id="f"), height=1, width=2,
                          encoding="mono8", step=2, data=b"\x00\xff")
        generated = Instance(score=0.5, occluded_by=[2, 1])  # a sequence of numbers: stored as array.array here
        fields = {name: getattr(generated, name) for name in generated.get_fields_and_field_types()}
        instance = _fill_slots(Instance, {**fields, "score": 0.5, "occluded_by": array.array("H", [2, 1])})
        return (image == reference and deserialize_message(serialize_message(image), Image) == reference
                and pose == Pose(position=Point(x=1.0, y=2.0, z=3.0))
                and deserialize_message(serialize_message(pose), Pose) == pose
                and instance == generated and deserialize_message(serialize_message(instance), Instance) == generated)
    except (AttributeError, TypeError, ValueError):
        return False


SLOTS_MATCH = _slots_match()
build = _fill_slots if SLOTS_MATCH else _generated


def region(x: int, y: int, width: int, height: int) -> RegionOfInterest:
    """An unrectified RegionOfInterest (ints)."""
    if not SLOTS_MATCH:
        return RegionOfInterest(x_offset=x, y_offset=y, width=width, height=height)
    msg = _blank(RegionOfInterest)
    msg._x_offset, msg._y_offset, msg._width, msg._height, msg._do_rectify = x, y, width, height, False
    return msg


def xyz(cls: type[M], values: Any) -> M:
    """A Point or Vector3 of three numbers."""
    x, y, z = float(values[0]), float(values[1]), float(values[2])
    if not SLOTS_MATCH:
        return cls(x=x, y=y, z=z)  # type: ignore[call-arg]
    msg = _blank(cls)
    msg._x, msg._y, msg._z = x, y, z  # type: ignore[attr-defined]
    return msg


def pose(position: Any, quaternion: Any) -> Pose:
    """A Pose at ``position`` (x, y, z) turned by ``quaternion`` (x, y, z, w)."""
    x, y, z, w = (float(v) for v in quaternion)
    if not SLOTS_MATCH:
        return Pose(position=xyz(Point, position), orientation=Quaternion(x=x, y=y, z=z, w=w))
    turn = _blank(Quaternion)
    turn._x, turn._y, turn._z, turn._w = x, y, z, w
    msg = _blank(Pose)
    msg._position, msg._orientation = xyz(Point, position), turn
    return msg


def empty_header() -> Header:
    """A default Header (zero stamp, no frame), as a generated message's nested default."""
    if not SLOTS_MATCH:
        return Header()
    stamp = _blank(Time)
    stamp._sec, stamp._nanosec = 0, 0
    msg = _blank(Header)
    msg._stamp, msg._frame_id = stamp, ""
    return msg


def image(array_hwc: np.ndarray, encoding: str, header: Header) -> Image:
    """A sensor_msgs/Image holding ``array_hwc`` (HxW or HxWxC, copied once); ``header`` is shared, not copied."""
    data = np.ascontiguousarray(array_hwc)
    payload = array.array("B")
    payload.frombytes(data.reshape(-1).view(np.uint8))
    return _image(header, int(data.shape[0]), int(data.shape[1]), encoding, int(data.strides[0]), payload)


def empty_image() -> Image:
    """The default Image (no pixels), as a generated message's nested default."""
    return _image(empty_header(), 0, 0, "", 0, array.array("B"))


def _image(header: Header, height: int, width: int, encoding: str, step: int, payload: array.array) -> Image:
    if not SLOTS_MATCH:
        return Image(header=header, height=height, width=width, encoding=encoding, step=step, data=payload)
    msg = _blank(Image)
    msg._header, msg._height, msg._width, msg._encoding = header, height, width, encoding
    msg._is_bigendian, msg._step, msg._data = 0, step, payload
    return msg
