"""An instance's oriented box over its whole extent: the visible surface plus the part its whole (amodal)
mask says lies behind an occluder.

Why: a box that spans only the visible surface is short along every side an occluder cuts, and a planner
sizing a grasp or a placement needs the whole object. Depth cannot show the hidden part, so it is put on the
instance's own surface plane (through the kept points' centroid, normal to the box's third axis, the
direction of least spread). A pixel of the whole mask outside the visible mask joins the box where its ray
meets that plane when depth there is nearer than the plane by ``OCCLUDER_GAP_M`` (something stands in
front) or has no reading. Where depth reads the plane or farther the pixel is not hidden: the object does
not reach there (the table shows), so it is left out; the whole mask's own overreach is cut that way.

Only the box changes (centre, axes, size, orientation); the centroid, the points and the coverage stay
the visible surface's, so the published cloud holds measured points only. ``eval3d`` measures the box-size
error with and without this (issue 32); the node's ``depth_amodal_extent`` turns it on.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from robot_instseg.engine.types import Detections
from robot_instseg.geometry.fusion import FrameFusion, Instance3D, oriented_box, rotation_to_quaternion
from robot_instseg.geometry.intrinsics import Intrinsics
from robot_instseg.geometry.surface_kernels import MAX_POINTS

OCCLUDER_GAP_M = 0.01  # depth this much nearer than the plane: an occluder stands in front of the pixel
PLANE_RANGE = 0.5  # a hidden point further than this share of the centroid's depth from it: a grazing ray, left out


def hidden_pixels(visible: np.ndarray, visible_origin: tuple[int, int], whole: np.ndarray,
                  whole_origin: tuple[int, int]) -> np.ndarray:
    """The whole mask's pixels (a bool crop at ``whole_origin`` x, y) that the visible crop does not hold."""
    hidden = whole.copy()
    (vx, vy), (wx, wy) = visible_origin, whole_origin
    vh, vw = visible.shape
    x0, y0 = max(vx, wx), max(vy, wy)
    x1, y1 = min(vx + vw, wx + whole.shape[1]), min(vy + vh, wy + whole.shape[0])
    if x1 > x0 and y1 > y0:
        hidden[y0 - wy:y1 - wy, x0 - wx:x1 - wx] &= ~visible[y0 - vy:y1 - vy, x0 - vx:x1 - vx]
    return hidden


def hidden_points(geo: Instance3D, hidden: np.ndarray, origin: tuple[int, int], depth_m: np.ndarray,
                  k: Intrinsics, step: int) -> np.ndarray:
    """(3, M) points of the hidden pixels (every ``step``-th row and column) on the instance's surface plane,
    those that depth shows occluded or does not read (the module docstring's rule)."""
    vs, us = np.nonzero(hidden[::step, ::step])
    if len(vs) == 0:
        return np.zeros((3, 0))
    us, vs = us * step + origin[0], vs * step + origin[1]
    rays = np.stack([(us - k.cx) / k.fx, (vs - k.cy) / k.fy, np.ones(len(us))])
    normal, centre = geo.box_axes[:, 2], np.asarray(geo.centroid, np.float64)
    facing = normal @ rays
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(np.abs(facing) > 1e-9, float(normal @ centre) / facing, np.nan)
    reading = depth_m[vs, us].astype(np.float64)
    on_plane = np.abs(z - centre[2]) <= PLANE_RANGE * centre[2]
    keep = on_plane & (np.isnan(reading) | (reading < z - OCCLUDER_GAP_M))
    return rays[:, keep] * z[keep]


def whole_object_box(geo: Instance3D, visible: np.ndarray, visible_origin: tuple[int, int], whole: np.ndarray,
                     whole_origin: tuple[int, int], depth_m: np.ndarray, k: Intrinsics) -> Instance3D:
    """``geo`` with its oriented box spanning the visible points and the hidden part of ``whole`` (its
    pixels sampled as densely as the visible surface's); ``geo`` itself when nothing is hidden."""
    step = max(1, int(math.ceil(math.sqrt(max(int(np.count_nonzero(visible)), 1) / MAX_POINTS))))
    behind = hidden_points(geo, hidden_pixels(visible, visible_origin, whole, whole_origin), whole_origin,
                           depth_m, k, step)
    if behind.shape[1] == 0:
        return geo
    points = np.concatenate([np.asarray(geo.points, np.float64).T, behind], axis=1)
    # in a fixed shuffled order: the box reads its percentiles on every n-th point, which on rows of equal
    # length (a hidden part's grid) would see only some of the columns
    points = points[:, np.random.default_rng(0).permutation(points.shape[1])]
    centre, axes, size = oriented_box(points)
    return dataclasses.replace(geo, box_center=centre, box_axes=axes, box_size=size,
                               quaternion=rotation_to_quaternion(axes))


def with_whole_extent(fusion: FrameFusion, detections: Detections, depth_m: np.ndarray,
                      k: Intrinsics) -> FrameFusion:
    """``fusion`` of ``detections`` (visible masks, with their whole masks) with every box over its whole
    extent; unchanged when the detections carry no whole masks (a model without the amodal head)."""
    if not detections.has_amodal or not detections.has_masks:
        return fusion
    boxes, whole_boxes = detections.mask_boxes.tolist(), detections.amodal_boxes.tolist()
    instances = [None if geo is None else
                 whole_object_box(geo, detections.masks[i], (boxes[i][0], boxes[i][1]), detections.amodal_masks[i],
                                  (whole_boxes[i][0], whole_boxes[i][1]), depth_m, k)
                 for i, geo in enumerate(fusion.instances)]
    return FrameFusion(instances, list(fusion.reasons), fusion.occluded_by)
