"""Per-instance 3D on scenes whose answer is known in closed form."""

from __future__ import annotations

import math

import cv2
import numpy as np

from robot_instseg.engine.types import Detections
from robot_instseg.geometry.fusion import MIN_POINTS, fuse, naive_centroid, oriented_box, rotation_to_quaternion
from robot_instseg.geometry.intrinsics import Intrinsics

K = Intrinsics(500.0, 500.0, 319.5, 239.5, 640, 480)
PLANE_Z, TABLE_Z = 0.8, 1.3


def _bar(angle_deg: float, length: int = 200, width: int = 40) -> np.ndarray:
    """A rotated rectangle mask centred in the image."""
    mask = np.zeros((480, 640), np.uint8)
    box = cv2.boxPoints(((320.0, 240.0), (float(length), float(width)), angle_deg))
    cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
    return mask.astype(bool)


def _scene(angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """(mask, depth): a flat bar facing the camera at PLANE_Z over a table at TABLE_Z."""
    mask = _bar(angle_deg)
    depth = np.full((480, 640), TABLE_Z, np.float32)
    depth[mask] = PLANE_Z
    return mask, depth


def _truth(mask: np.ndarray) -> np.ndarray:
    vs, us = np.nonzero(mask)
    return np.array([((us - K.cx) * PLANE_Z / K.fx).mean(), ((vs - K.cy) * PLANE_Z / K.fy).mean(), PLANE_Z])


def test_centroid_box_and_coverage_of_a_flat_bar() -> None:
    mask, depth = _scene(30.0)
    result = fuse(Detections.from_full_masks(mask[None], [0.9], [0]), depth, K)
    inst = result.instances[0]
    assert result.reasons == [""]
    np.testing.assert_allclose(inst.centroid, _truth(mask), atol=1e-4)
    long_axis = inst.box_axes[:, 0]
    angle = math.degrees(math.atan2(long_axis[1], long_axis[0])) % 180
    assert abs(angle - 30.0) < 1.0
    assert abs(inst.box_size[0] - 200 * PLANE_Z / K.fx) < 0.01 and abs(inst.box_size[1] - 40 * PLANE_Z / K.fx) < 0.01
    assert inst.box_size[2] < 1e-6  # a flat surface has no depth
    assert np.isclose(np.linalg.det(inst.box_axes), 1.0)
    assert inst.coverage == 1.0 and inst.valid_points >= MIN_POINTS
    assert abs(inst.distance - np.linalg.norm(_truth(mask))) < 1e-3


def test_a_mask_leaking_onto_the_table_and_flying_pixels_do_not_move_the_centroid() -> None:
    mask, depth = _scene(0.0)
    leaky = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)  # 3 px onto the table
    ring = leaky & ~mask
    rng = np.random.default_rng(0)
    flying = ring & (rng.random(mask.shape) < 0.5)
    depth[flying] = rng.uniform(PLANE_Z, TABLE_Z, int(flying.sum()))  # mixtures of the two surfaces
    depth[rng.random(mask.shape) < 0.05] = np.nan  # holes
    detections = Detections.from_full_masks(leaky[None], [0.9], [0])
    inst = fuse(detections, depth, K).instances[0]
    truth = _truth(mask)
    ours = np.linalg.norm(inst.centroid - truth)
    x0, y0 = (int(v) for v in detections.mask_boxes[0][:2])
    naive = np.linalg.norm(naive_centroid(detections.masks[0], x0, y0, depth, K) - truth)
    assert ours < 0.002, ours  # under 2 mm
    assert naive > 10 * ours  # the plain mean is pulled towards the table
    assert 0.9 < inst.coverage < 1.0


def test_instances_without_usable_depth_say_why() -> None:
    mask, depth = _scene(0.0)
    tiny = np.zeros_like(mask)
    tiny[100:103, 100:103] = True  # 9 pixels: fewer than MIN_POINTS
    holes = depth.copy()
    holes[mask] = np.nan
    detections = Detections.from_full_masks(np.stack([mask, tiny]), [0.9, 0.8], [0, 1])
    assert fuse(detections, depth, K).reasons == ["", "too_few_points"]
    assert fuse(detections, holes, K).reasons[0] == "no_depth_in_mask"
    assert fuse(detections, np.full_like(depth, np.nan), K).instances == [None, None]


def test_quaternion_of_the_box_axes_rebuilds_them() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        q *= np.sign(np.linalg.det(q))
        x, y, z, w = rotation_to_quaternion(q)
        rebuilt = np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        np.testing.assert_allclose(rebuilt, q, atol=1e-9)


def test_the_box_x_axis_is_the_longer_even_when_the_spreads_are_nearly_equal() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        angle = rng.uniform(0, np.pi)
        a, b = rng.uniform(0.05, 0.06, 2)  # a disc seen face-on, slightly elliptic, noisy
        t = rng.uniform(0, 2 * np.pi, 400)
        r = np.sqrt(rng.uniform(0, 1, 400))
        x, y = a * r * np.cos(t), b * r * np.sin(t)
        points = np.stack([x * np.cos(angle) - y * np.sin(angle) + 0.1, x * np.sin(angle) + y * np.cos(angle),
                           0.9 + rng.normal(0, 0.002, 400)])
        centre, axes, size = oriented_box(points)
        assert size[0] >= size[1] and np.isclose(np.linalg.det(axes), 1.0)
        proj = axes.T @ (points - centre[:, None])  # the box is centred on the points' 1st-99th percentiles
        assert np.all(np.abs(np.percentile(proj, 99, axis=1) + np.percentile(proj, 1, axis=1)) < 0.01)
