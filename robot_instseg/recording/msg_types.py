"""The rosbags typestore for our bags: the standard ROS 2 types plus robot_instseg_msgs.

Bags carry each topic's message definition, so ``ros2 bag`` on a robot and rosbags here can
both read InstanceArray without our package installed. The .msg files are read from the
source tree or the installed share, whichever is found first.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

CUSTOM_PACKAGE = "robot_instseg_msgs"
CUSTOM_TYPES = ("Instance", "InstanceArray")  # Instance first: InstanceArray refers to it
INSTANCE_ARRAY = f"{CUSTOM_PACKAGE}/msg/InstanceArray"
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
STRING = "std_msgs/msg/String"


def msg_dirs() -> list[Path]:
    """Folders holding our .msg files: the source tree's interface package, then the installed one."""
    dirs = [Path(__file__).resolve().parents[2] / CUSTOM_PACKAGE / "msg"]
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return dirs
    try:
        dirs.append(Path(get_package_share_directory(CUSTOM_PACKAGE)) / "msg")
    except PackageNotFoundError:
        pass
    return dirs


def _store_for_distro():
    """The typestore of the running ROS distro (its type hashes), else the newest rosbags knows."""
    name = f"ROS2_{os.environ.get('ROS_DISTRO', '').upper()}"
    return getattr(Stores, name, Stores.LATEST)


@lru_cache(maxsize=1)
def typestore():
    """The rosbags type store for this ROS distribution, with our messages registered."""
    store = get_typestore(_store_for_distro())
    for folder in msg_dirs():
        if all((folder / f"{name}.msg").is_file() for name in CUSTOM_TYPES):
            types = {}
            for name in CUSTOM_TYPES:
                types.update(get_types_from_msg((folder / f"{name}.msg").read_text(), f"{CUSTOM_PACKAGE}/msg/{name}"))
            store.register(types)
            return store
    raise FileNotFoundError(f"{CUSTOM_PACKAGE} .msg files not found in {', '.join(map(str, msg_dirs()))}")


def canonical_cdr(data: bytes, msgtype: str) -> bytes:
    """``data`` (one CDR message) with its alignment padding zeroed. rclpy's serializer (Fast-CDR) leaves
    padding bytes as it found them in memory, so one message serialized twice can differ; a round trip
    through rosbags' serializer writes zeros there, so offline runs write the same bytes every time
    (about 0.2 ms per message)."""
    store = typestore()
    return bytes(store.serialize_cdr(store.deserialize_cdr(data, msgtype), msgtype))
