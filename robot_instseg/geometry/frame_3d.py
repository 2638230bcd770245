"""A frame's 3D as the node publishes it: each instance's fusion and the occlusion order read from depth.

The two read the same frame and neither needs the other, so where a core is spare the order and half of
the instances' surfaces run on the helper thread (``geometry.helper_thread``) while this thread does the
rest; the result is the one thread's, to the bit. Work the helper has not started when this thread is done
with its own share is taken back and done here, so a helper whose core is busy costs little.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from robot_instseg.engine.types import Detections
from robot_instseg.geometry.depth_order import depth_occlusion
from robot_instseg.geometry.fusion import FrameFusion, check_registered, fuse
from robot_instseg.geometry.helper_thread import helper_thread
from robot_instseg.geometry.intrinsics import Intrinsics


def frame_3d(detections: Detections, depth_m: np.ndarray, k: Intrinsics, labels: Optional[np.ndarray] = None,
             complete: bool = True, order: bool = True, parallel: bool = True) -> FrameFusion:
    """``fuse`` of ``detections`` (visible masks) and, with ``order``, ``occluded_by`` read from depth
    (``depth_order``; ``labels``: the frame's label image when the caller has it). ``parallel``: use the
    helper thread where there is one."""
    check_registered(detections, depth_m, k)  # before the helper reads depth at mask pixels
    helper = helper_thread() if parallel else None
    ordering = None
    if order and helper is not None and len(detections) >= 2:
        ordering = helper.submit(depth_occlusion, detections, depth_m, labels)
    fusion = fuse(detections, depth_m, k, complete=complete, helper=helper)
    if ordering is not None and not ordering.cancel():  # cancelled: the helper never got to it
        fusion.occluded_by = ordering.result()
    elif order:
        fusion.occluded_by = depth_occlusion(detections, depth_m, labels)
    return fusion
