"""A depth Image and a CameraInfo (their fields) -> depth in metres and intrinsics at the colour
image's size, or an InputError whose reason says what was wrong. Shared by the node and the bag
tools, so a bag processed offline gets the 3D the node published."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from robot_instseg.engine.errors import InputError
from robot_instseg.geometry.depth_image import registered_to
from robot_instseg.geometry.intrinsics import Intrinsics
from robot_instseg.io.image_encodings import DEFAULT_MAX_INPUT_PIXELS, Buffer, decode_depth


@dataclass
class DepthFields:
    """What a sensor_msgs/Image of depth carries (as the ROS client library or rosbags deliver it)."""

    encoding: str
    height: int
    width: int
    step: int
    data: Buffer
    is_bigendian: bool = False


@dataclass
class CameraFields:
    """What 3D needs of a sensor_msgs/CameraInfo: its size and the row-major 3x3 ``k``."""

    width: int
    height: int
    k: Sequence[float]


def registered_depth(depth: DepthFields, camera: CameraFields, image_shape: tuple[int, int],
                     max_pixels: int = DEFAULT_MAX_INPUT_PIXELS) -> tuple[np.ndarray, Intrinsics]:
    """(float32 metres with NaN holes, intrinsics), both at ``image_shape`` (height, width) of the colour image.

    InputError reasons: bad_camera_info, bad_encoding, step, data_size, too_large, empty, size_mismatch,
    empty_depth (no reading at all)."""
    height, width = image_shape
    k = Intrinsics.from_k(list(camera.k), camera.width, camera.height).scaled_to(width, height)
    metres = decode_depth(depth.encoding, depth.height, depth.width, depth.step, depth.data,
                          bool(depth.is_bigendian), max_pixels)
    if not np.isfinite(metres).any():
        raise InputError(f"depth frame {depth.width}x{depth.height} has no reading (all 0 or NaN)", "empty_depth")
    return registered_to(metres, height, width), k
