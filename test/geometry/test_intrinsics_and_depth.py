"""Intrinsics and depth images: every refusal has its reason code; scaling keeps the field of view."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_instseg.engine.errors import InputError
from robot_instseg.geometry.depth_image import depth_in_metres, registered_to
from robot_instseg.geometry.intrinsics import Intrinsics

K640 = [600.0, 0.0, 319.5, 0.0, 600.0, 239.5, 0.0, 0.0, 1.0]


@pytest.mark.parametrize("k, reason", [
    ([0.0, 0, 319.5, 0, 600.0, 239.5, 0, 0, 1], "bad_camera_info"),  # uncalibrated camera_info: all zeros
    ([600.0, 0, 319.5, 0, math.nan, 239.5, 0, 0, 1], "bad_camera_info"),
    ([600.0, 0, 319.5], "bad_camera_info"),
])
def test_unusable_camera_info_is_refused_with_a_reason(k: list, reason: str) -> None:
    with pytest.raises(InputError) as refused:
        Intrinsics.from_k(k, 640, 480)
    assert refused.value.reason == reason


def test_intrinsics_scale_with_the_image_and_refuse_another_field_of_view() -> None:
    k = Intrinsics.from_k(K640, 640, 480)
    half = k.scaled_to(320, 240)
    assert (half.fx, half.fy) == (300.0, 300.0)
    assert (half.cx, half.cy) == (159.5, 119.5)  # pixel centres stay on the optical axis
    assert k.scaled_to(640, 480) is k
    with pytest.raises(InputError) as refused:
        k.scaled_to(1280, 720)
    assert refused.value.reason == "size_mismatch"


def test_depth_encodings_to_metres_with_nan_for_no_reading() -> None:
    mm = np.array([[0, 500], [1234, 65535]], np.uint16)
    np.testing.assert_allclose(depth_in_metres("16UC1", mm), [[np.nan, 0.5], [1.234, 65.535]], rtol=1e-6)
    metres = np.array([[np.nan, -1.0], [0.0, 2.5], [np.inf, 1.0]], np.float32)
    out = depth_in_metres("32FC1", metres)
    assert np.isnan(out[:3, 0]).all() and np.isnan(out[0, 1]) and out[1, 1] == 2.5 and out[2, 1] == 1.0
    with pytest.raises(InputError) as refused:
        depth_in_metres("rgb8", mm)
    assert refused.value.reason == "bad_encoding"


def test_depth_of_another_resolution_is_resampled_nearest_or_refused() -> None:
    depth = np.array([[1.0, 2.0], [3.0, np.nan]], np.float32)
    up = registered_to(depth, 4, 4)
    assert up.shape == (4, 4) and set(np.unique(up[np.isfinite(up)])) == {1.0, 2.0, 3.0}  # no invented depths
    assert np.isnan(up[2:, 2:]).all()
    with pytest.raises(InputError) as refused:
        registered_to(depth, 4, 6)
    assert refused.value.reason == "size_mismatch"
