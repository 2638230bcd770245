"""The support plane fitted to the readings no instance owns, on scenes whose table is known in closed form."""

from __future__ import annotations

import math

import numpy as np

from robot_instseg.geometry.intrinsics import Intrinsics
from robot_instseg.geometry.support_plane import fit_support_plane
from robot_instseg.synthetic.depth import CAMERA_HEIGHT_M, CAMERA_PITCH_DEG, render_depth, sensor_depth
from robot_instseg.synthetic.scenes import generate_scene, scene_seed

PITCH = math.radians(CAMERA_PITCH_DEG)
TABLE_NORMAL = np.array([0.0, -math.cos(PITCH), -math.sin(PITCH)])  # toward the camera: y down, z forward


def _scene(index: int):
    scene = generate_scene(scene_seed(7, index), 480, 640)
    truth = render_depth(scene)
    owned = np.any(np.stack(scene.visible_masks()), axis=0)
    return scene, truth, owned


def test_the_table_under_the_objects_is_found_on_clean_and_on_sensor_depth() -> None:
    for index in range(3):
        scene, truth, owned = _scene(index)
        for depth, angle_tol, offset_tol in ((truth.depth, 0.2, 0.001), (sensor_depth(truth, scene.seed), 1.0, 0.005)):
            plane = fit_support_plane(depth, truth.intrinsics, ~owned)
            assert plane is not None
            angle = math.degrees(math.acos(min(1.0, float(plane.normal @ TABLE_NORMAL))))
            assert angle < angle_tol, (index, angle)
            assert abs(plane.offset + CAMERA_HEIGHT_M) < offset_tol, (index, plane.offset)
            assert plane.inlier_share > 0.8


def test_heights_are_zero_on_the_table_and_positive_on_the_objects() -> None:
    scene, truth, owned = _scene(0)
    k = truth.intrinsics
    plane = fit_support_plane(truth.depth, k, ~owned)
    assert plane is not None
    heights = plane.heights(truth.depth, 0, 0, 1, k)
    assert np.abs(heights[~owned]).max() < 0.001
    assert np.median(heights[owned]) > 0.01
    crop = plane.heights(truth.depth[100:300:2, 200:400:2], 200, 100, 2, k)  # a crop on a grid: same heights
    np.testing.assert_allclose(crop, heights[100:300:2, 200:400:2], atol=1e-9)


def test_no_plane_where_the_free_readings_are_not_one_or_too_few() -> None:
    k = Intrinsics(500.0, 500.0, 319.5, 239.5, 640, 480)
    clutter = np.random.default_rng(0).uniform(0.5, 2.0, (480, 640))
    assert fit_support_plane(clutter, k, np.ones((480, 640), bool)) is None
    _, truth, owned = _scene(0)
    few = np.zeros_like(owned)
    few[:40, :40] = True  # 25 samples on the grid
    assert fit_support_plane(truth.depth, truth.intrinsics, few) is None
    assert fit_support_plane(np.full((480, 640), np.nan), k, np.ones((480, 640), bool)) is None
