"""The compiled 3D steps against the rules stated in plain numpy, on rendered scenes with sensor artefacts."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from robot_instseg.geometry.robust import MAD_TO_SIGMA
from robot_instseg.geometry.surface_kernels import (
    BAND_MADS,
    BAND_MIN_M,
    EDGE_JUMP_M,
    EDGE_JUMP_REL,
    MAX_POINTS,
    MIN_POINTS,
    outer_ranks,
    surface_points,
)
from robot_instseg.jit import KERNEL_MODULES
from robot_instseg.synthetic.depth import render_depth, sensor_depth
from robot_instseg.synthetic.scenes import generate_scene, scene_seed

PACKAGE = Path(__file__).resolve().parents[2] / "robot_instseg"


def _rules_in_numpy(mask: np.ndarray, x0: int, y0: int, depth_m: np.ndarray) -> np.ndarray:
    """(2, N) pixel rows, columns (in the crop) of the points the module's two rules keep, numpy's way."""
    h, w = mask.shape
    z_box = depth_m[y0:y0 + h, x0:x0 + w]
    n_valid = int(np.count_nonzero(mask & np.isfinite(z_box)))
    step = max(1, int(np.ceil(np.sqrt(n_valid / MAX_POINTS))))
    finite = depth_m.astype(np.float32)
    cv2.patchNaNs(finite, np.inf)
    nearest = cv2.erode(finite, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)[y0:y0 + h, x0:x0 + w]
    z_grid = z_box[::step, ::step]
    edge = (z_grid - nearest[::step, ::step]) > np.maximum(EDGE_JUMP_M, EDGE_JUMP_REL * z_grid)
    vs, us = np.nonzero(mask[::step, ::step] & np.isfinite(z_grid) & ~edge)
    zs = z_grid[vs, us]
    if len(zs) >= MIN_POINTS:
        median = np.partition(zs, len(zs) // 2)[len(zs) // 2]
        deviation = np.abs(zs - median)
        mad = float(np.partition(deviation, len(zs) // 2)[len(zs) // 2])
        keep = deviation <= max(BAND_MADS * MAD_TO_SIGMA * mad, BAND_MIN_M)
        vs, us = vs[keep], us[keep]
    return np.stack([vs * step, us * step])


@pytest.mark.parametrize("index", range(4))
def test_kept_points_are_the_ones_the_rules_keep(index: int) -> None:
    scene = generate_scene(scene_seed(11, index), 480, 640)
    truth = render_depth(scene)
    depth, k = sensor_depth(truth, scene.seed), truth.intrinsics
    checked = 0
    for full in scene.visible_masks():
        ys, xs = np.nonzero(full)
        if len(ys) < 50:
            continue
        x0, y0 = int(xs.min()), int(ys.min())
        mask = np.ascontiguousarray(full[y0:ys.max() + 1, x0:xs.max() + 1])
        rows, _, _, status = surface_points(mask, x0, y0, depth, k.fx, k.fy, k.cx, k.cy)
        expected = _rules_in_numpy(mask, x0, y0, depth)
        if status:
            assert expected.shape[1] < MIN_POINTS
            continue
        vs = np.rint(rows[1] * k.fy / rows[2] + k.cy).astype(int) - y0  # the kernel's points back to pixels
        us = np.rint(rows[0] * k.fx / rows[2] + k.cx).astype(int) - x0
        np.testing.assert_array_equal(np.stack([vs, us]), expected)
        np.testing.assert_array_equal(rows[2], depth[expected[0] + y0, expected[1] + x0].astype(np.float64))
        checked += 1
    assert checked >= 3


def test_the_rules_keep_the_surface_and_drop_flying_pixels() -> None:
    """A flat square at 1 m on a wall at 2 m: the ring of pixels behind its edge is dropped, the square kept."""
    depth = np.full((100, 100), 2.0, np.float32)
    depth[30:70, 30:70] = 1.0
    depth[10, 10] = np.nan  # no reading, away from the mask
    mask = np.zeros((44, 44), bool)
    mask[:, :] = True  # leaks two pixels onto the wall all round
    rows, n_valid, pixels, status = surface_points(mask, 28, 28, depth, 100.0, 100.0, 50.0, 50.0)
    assert status == 0 and n_valid == pixels == 44 * 44
    assert set(np.unique(rows[2])) == {1.0}  # the wall readings are behind a depth edge or outside the band
    assert rows.shape[1] == 20 * 20  # 1936 readings: every second row and column (MAX_POINTS)


@pytest.mark.parametrize("size", [1, 2, 5, 20, 99, 100, 101, 430, 800])
def test_outer_ranks_are_the_values_a_sort_puts_there(size: int) -> None:
    """The box's percentiles: random, tied, ascending and descending values, the box's ranks and any others."""
    rng = np.random.default_rng(size)
    for trial in range(60):
        values = rng.normal(0, 1, size)
        if trial % 4 == 1:
            values = np.round(values, 1)  # ties
        elif trial % 4 == 2:
            values = np.sort(values)  # raster order along an axis: every value a new largest
        elif trial % 4 == 3:
            values = np.sort(values)[::-1].copy()
        ordered = np.sort(values)
        last = size - 1
        box_ranks = (int(np.round(last * 0.01)), int(np.round(last * 0.99)))
        for low, high in (box_ranks, tuple(sorted(rng.integers(0, size, 2).tolist())), (0, last)):
            assert outer_ranks(values, low, high) == (ordered[low], ordered[high]), (trial, low, high)


def test_every_module_with_kernels_is_compiled_at_build() -> None:
    found = {".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
             for path in PACKAGE.rglob("*.py") if re.search(r"^@kernel$", path.read_text(), re.MULTILINE)}
    assert found and found <= set(KERNEL_MODULES), f"add {sorted(found - set(KERNEL_MODULES))} to jit.KERNEL_MODULES"
