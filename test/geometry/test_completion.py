"""Completing a mask from depth: scenes with rendered depth, a mask cut short of its object."""

from __future__ import annotations

import cv2
import numpy as np

from robot_instseg.engine.types import Detections
from robot_instseg.geometry.completion import SurfaceCompletion
from robot_instseg.geometry.fusion import fuse
from robot_instseg.geometry.support_plane import fit_support_plane
from robot_instseg.synthetic.depth import render_depth, sensor_depth, visible_surface_points
from robot_instseg.synthetic.scenes import generate_scene, scene_seed


def _isolated_objects(min_area: int = 2500):
    """(depth truth, sensor depth, masks, surface points, index) of objects no other object comes within 10 px of."""
    for index in range(12):
        scene = generate_scene(scene_seed(7, index), 480, 640)
        truth = render_depth(scene)
        masks = scene.visible_masks()
        points = visible_surface_points(scene, truth)
        for j, mask in enumerate(masks):
            near = cv2.dilate(mask.astype(np.uint8), np.ones((21, 21), np.uint8)).astype(bool)
            if mask.sum() >= min_area and not any((near & m).any() for i, m in enumerate(masks) if i != j) \
                    and mask[:, :5].sum() + mask[:, -5:].sum() + mask[-5:].sum() + mask[:5].sum() == 0:
                yield truth, sensor_depth(truth, scene.seed), masks, points[j], j


def _cut(mask: np.ndarray, share: float = 0.8) -> np.ndarray:
    """The mask's left ``share`` of its columns: what a model that missed one end would give."""
    xs = np.nonzero(mask.any(axis=0))[0]
    kept = mask.copy()
    kept[:, xs[0] + int(share * (xs[-1] - xs[0] + 1)):] = False
    return kept


def _crop(full: np.ndarray) -> tuple[np.ndarray, int, int]:
    ys, xs = np.nonzero(full)
    return full[ys.min():ys.max() + 1, xs.min():xs.max() + 1], int(xs.min()), int(ys.min())


def _paste(mask: np.ndarray, x0: int, y0: int, shape: tuple[int, int]) -> np.ndarray:
    full = np.zeros(shape, bool)
    full[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]] = mask
    return full


def test_a_mask_cut_short_grows_back_to_its_object_and_not_onto_the_table() -> None:
    checked = 0
    for truth, _, masks, _, j in _isolated_objects():
        k, shape = truth.intrinsics, truth.depth.shape
        owned = np.any(np.stack(masks), axis=0)
        short = _cut(masks[j])
        free = ~(owned & ~masks[j]) & ~short  # the missed part is free, like the table
        plane = fit_support_plane(truth.depth, k, free)
        assert plane is not None
        grown = _paste(*SurfaceCompletion(truth.depth, k, plane, free).complete(*_crop(short)), shape)
        true = masks[j]
        assert (grown & true).sum() / true.sum() > 0.98, (j, (grown & true).sum() / true.sum())  # recall back
        rim = cv2.dilate(true.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert (grown & ~rim).sum() == 0  # no table pixel beyond the object's 2-pixel rim (grid of 2)
        checked += 1
        if checked == 4:
            break
    assert checked == 4


def test_pixels_another_instance_owns_are_never_taken() -> None:
    truth, _, masks, _, j = next(_isolated_objects())
    k = truth.intrinsics
    short = _cut(masks[j])
    free = ~np.any(np.stack(masks), axis=0)  # the missed part belongs to someone else
    plane = fit_support_plane(truth.depth, k, free)
    assert plane is not None
    grown = _paste(*SurfaceCompletion(truth.depth, k, plane, free).complete(*_crop(short)), truth.depth.shape)
    assert (grown & ~short).sum() == 0


def test_completion_cuts_the_centroid_error_of_a_short_mask_on_sensor_depth() -> None:
    errors_without, errors_with = [], []
    for count, (truth, depth, masks, points, j) in enumerate(_isolated_objects()):
        short = _cut(masks[j])
        others = [m for i, m in enumerate(masks) if i != j]
        detections = Detections.from_full_masks(np.stack([short, *others]), [0.9] * len(masks), [0] * len(masks))
        truth_centroid = points.mean(axis=0)
        for complete, errors in ((False, errors_without), (True, errors_with)):
            inst = fuse(detections, depth, truth.intrinsics, complete=complete).instances[0]
            assert inst is not None
            errors.append(float(np.linalg.norm(inst.centroid - truth_centroid)) * 1e3)
        if count == 5:
            break
    assert np.median(errors_with) < 0.5 * np.median(errors_without), (errors_with, errors_without)


def test_without_a_support_plane_nothing_is_completed() -> None:
    truth, depth, masks, points, j = next(_isolated_objects())
    short = _cut(masks[j])
    tilted = np.random.default_rng(1).uniform(0.5, 2.0, depth.shape)  # no plane anywhere in the free readings
    tilted[masks[j]] = depth[masks[j]]
    detections = Detections.from_full_masks(short[None], [0.9], [0])
    with_completion = fuse(detections, tilted, truth.intrinsics).instances[0]
    without = fuse(detections, tilted, truth.intrinsics, complete=False).instances[0]
    assert with_completion is not None and without is not None
    np.testing.assert_array_equal(with_completion.centroid, without.centroid)
