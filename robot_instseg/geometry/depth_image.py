"""Depth images as float32 metres with NaN for "no reading", at the colour image's size.

REP 118: ``16UC1`` (also ``mono16``) holds millimetres, ``32FC1`` metres; 0 and NaN mean no
reading. Depth at another resolution with the same field of view is resampled with nearest
neighbour (interpolating across a depth edge would invent points between the surfaces).
"""

from __future__ import annotations

import cv2
import numpy as np

from robot_instseg.engine.errors import InputError
from robot_instseg.geometry.intrinsics import ASPECT_TOLERANCE

MILLIMETRE_ENCODINGS = ("16UC1", "mono16")
METRE_ENCODINGS = ("32FC1",)
DEPTH_ENCODINGS = MILLIMETRE_ENCODINGS + METRE_ENCODINGS


def depth_in_metres(encoding: str, depth: np.ndarray) -> np.ndarray:
    """float32 metres, NaN where there is no reading; InputError (bad_encoding) for other encodings."""
    if encoding in MILLIMETRE_ENCODINGS:
        metres = depth.astype(np.float32) * np.float32(0.001)
    elif encoding in METRE_ENCODINGS:
        metres = depth.astype(np.float32, copy=True)
    else:
        raise InputError(f"depth encoding {encoding!r} is not a depth encoding; expected one of "
                         f"{list(DEPTH_ENCODINGS)} (REP 118)", "bad_encoding")
    metres[~(metres > 0)] = np.nan  # 0, negative and NaN: no reading
    metres[~np.isfinite(metres)] = np.nan
    return metres


def registered_to(depth_m: np.ndarray, height: int, width: int) -> np.ndarray:
    """``depth_m`` at the colour size (nearest neighbour); InputError (size_mismatch) for another field of view."""
    dh, dw = depth_m.shape[:2]
    if (dh, dw) == (height, width):
        return depth_m
    sx, sy = width / dw, height / dh
    if abs(sx - sy) > ASPECT_TOLERANCE * max(sx, sy):
        raise InputError(f"depth {dw}x{dh} and colour {width}x{height} differ in aspect ratio: not registered "
                         "to the colour image (use the driver's aligned_depth_to_color topic)", "size_mismatch")
    return cv2.resize(depth_m, (width, height), interpolation=cv2.INTER_NEAREST)
