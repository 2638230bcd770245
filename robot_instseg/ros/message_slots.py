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

M = TypeVar("M")


def _fill_slots(cls: type[M], fields: dict[str, Any]) -> M:
    """A ``cls`` message holding ``fields``, which name every field of it, set slot by slot."""
    msg = cls.__new__(cls)  # type: ignore[call-overload]
    if "_check_fields" in cls.__slots__:  # type: ignore[attr-defined]
        msg._check_fields = False
    for name, value in fields.items():
        setattr(msg, "_" + name, value)
    return msg


def _generated(cls: type[M], fields: dict[str, Any]) -> M:
    return cls(**fields)  # type: ignore[call-arg]


def _slots_match() -> bool:
    """Whether this rosidl's messages are laid out as ``_fill_slots`` fills them: an Image with a Header, and a
    Pose, built both ways, equal and serialise alike."""
    try:
        header = _fill_slots(Header, {"stamp": _fill_slots(Time, {"sec": 3, "nanosec": 4}), "frame_id": "f"})
        image = _fill_slots(Image, {"header": header, "height": 1, "width": 2, "encoding": "mono8", "is_bigendian": 0,
                                    "step": 2, "data": array.array("B", b"\x00\xff")})
        pose = _fill_slots(Pose, {"position": _fill_slots(Point, {"x": 1.0, "y": 2.0, "z": 3.0}),
                                  "orientation": _fill_slots(Quaternion, {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0})})
        reference = Image(header=Header(stamp=Time(sec=3, nanosec=4), frame_id="f"), height=1, width=2,
                          encoding="mono8", step=2, data=b"\x00\xff")
        return (image == reference and deserialize_message(serialize_message(image), Image) == reference
                and pose == Pose(position=Point(x=1.0, y=2.0, z=3.0))
                and deserialize_message(serialize_message(pose), Pose) == pose)
    except (AttributeError, TypeError, ValueError):
        return False


SLOTS_MATCH = _slots_match()
build = _fill_slots if SLOTS_MATCH else _generated


def region(x: int, y: int, width: int, height: int) -> RegionOfInterest:
    """An unrectified RegionOfInterest (ints)."""
    return build(RegionOfInterest, {"x_offset": x, "y_offset": y, "width": width, "height": height,
                                    "do_rectify": False})


def xyz(cls: type[M], values: Any) -> M:
    """A Point or Vector3 of three numbers."""
    return build(cls, {"x": float(values[0]), "y": float(values[1]), "z": float(values[2])})


def pose(position: Any, quaternion: Any) -> Pose:
    """A Pose at ``position`` (x, y, z) turned by ``quaternion`` (x, y, z, w)."""
    x, y, z, w = quaternion
    return build(Pose, {"position": xyz(Point, position),
                        "orientation": build(Quaternion, {"x": float(x), "y": float(y), "z": float(z), "w": float(w)})})


def empty_header() -> Header:
    """A default Header (zero stamp, no frame), as a generated message's nested default."""
    return build(Header, {"stamp": build(Time, {"sec": 0, "nanosec": 0}), "frame_id": ""})


def image(array_hwc: np.ndarray, encoding: str, header: Header) -> Image:
    """A sensor_msgs/Image holding ``array_hwc`` (HxW or HxWxC, copied once); ``header`` is shared, not copied."""
    data = np.ascontiguousarray(array_hwc)
    payload = array.array("B")
    payload.frombytes(data.reshape(-1).view(np.uint8))
    return build(Image, {"header": header, "height": int(data.shape[0]), "width": int(data.shape[1]),
                         "encoding": encoding, "is_bigendian": 0, "step": int(data.strides[0]), "data": payload})


def empty_image() -> Image:
    """The default Image (no pixels), as a generated message's nested default."""
    return build(Image, {"header": empty_header(), "height": 0, "width": 0, "encoding": "", "is_bigendian": 0,
                         "step": 0, "data": array.array("B")})
