"""Pinhole intrinsics of the colour camera (sensor_msgs/CameraInfo ``k``), checked and scaled.

Depth registered to colour (RealSense ``aligned_depth_to_color``, ZED, Orbbec) shares these
intrinsics; when depth or CameraInfo comes at another resolution with the same field of view,
the intrinsics scale with the image. Anything else is refused with a reason code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from robot_instseg.engine.errors import InputError

ASPECT_TOLERANCE = 0.01  # relative: 640x480 vs 1280x720 is another field of view, 1280x960 is not


@dataclass(frozen=True)
class Intrinsics:
    """fx, fy, cx, cy in pixels of an image ``width`` x ``height`` (ROS convention: integer = pixel centre)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_k(cls, k: Sequence[float], width: int, height: int) -> "Intrinsics":
        """From CameraInfo's row-major 3x3 ``k``; InputError (reason bad_camera_info) when unusable."""
        if len(k) != 9:
            raise InputError(f"camera_info k has {len(k)} values, 9 expected", "bad_camera_info")
        intrinsics = cls(float(k[0]), float(k[4]), float(k[2]), float(k[5]), int(width), int(height))
        intrinsics.check()
        return intrinsics

    def check(self) -> None:
        """InputError (bad_camera_info) unless the focal lengths are positive and the size is known."""
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(v) for v in values) or self.fx <= 0 or self.fy <= 0:
            raise InputError(f"camera_info has fx={self.fx}, fy={self.fy}: focal lengths must be positive "
                             "(is the camera calibrated?)", "bad_camera_info")
        if self.width <= 0 or self.height <= 0:
            raise InputError(f"camera_info size {self.width}x{self.height} is empty", "bad_camera_info")

    def scaled_to(self, width: int, height: int) -> "Intrinsics":
        """The same camera at another resolution (same field of view); InputError (size_mismatch) otherwise."""
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        if abs(sx - sy) > ASPECT_TOLERANCE * max(sx, sy):
            raise InputError(f"{width}x{height} and camera_info {self.width}x{self.height} differ in aspect ratio: "
                             "not the same field of view, so not registered to each other", "size_mismatch")
        # pixel centres: u' + 0.5 = (u + 0.5) * s
        return Intrinsics(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
                          int(width), int(height))

    def k(self) -> list[float]:
        """Row-major 3x3 camera matrix, as CameraInfo ``k``."""
        return [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0]
