"""The one-call decode of prototype masks (``sample_linear_in_boxes``) equals the per-instance path it replaces
for YOLO maps: each map window read as a numpy product, then sampled by ``sample_in_boxes``."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from robot_instseg.engine.mask_sampling import (
    MapSampler,
    crop_boxes,
    sample_in_boxes,
    sample_linear_in_boxes,
)
from robot_instseg.engine.preprocess import PreprocessConfig, make_transform


def _region(coefficients: np.ndarray, protos: np.ndarray, i: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Instance i's map over a window, summed in float64: the exact value both paths round to float32."""
    window = protos[:, y0:y1, x0:x1].astype(np.float64)
    return np.tensordot(coefficients[i].astype(np.float64), window, axes=1).astype(np.float32)


def _random_boxes(rng: np.random.Generator, count: int, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    x = np.sort(rng.uniform(-20, w + 20, (count, 2)), axis=1)
    y = np.sort(rng.uniform(-20, h + 20, (count, 2)), axis=1)
    boxes = np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], 1).astype(np.float32)
    boxes[0] = (0, 0, w, h)  # the whole frame
    boxes[1] = (5.5, 7.2, 5.9, 40.0)  # thinner than a pixel: empty
    boxes[2] = (w - 3.2, h - 2.7, w + 4, h + 9)  # the far corner
    return crop_boxes(boxes, shape)


@pytest.mark.parametrize("image_shape,letterbox", [((480, 640), False), ((333, 517), True), ((200, 300), True),
                                                   ((481, 641), True)])
def test_linear_maps_sample_as_the_per_instance_path(image_shape: tuple[int, int], letterbox: bool) -> None:
    rng = np.random.default_rng(sum(image_shape))
    config = PreprocessConfig(size=(288, 384), letterbox=letterbox)
    transform = make_transform(image_shape, config)
    protos = rng.normal(0, 1, (32, 72, 96)).astype(np.float32)
    coefficients = rng.normal(0, 0.3, (12, 32)).astype(np.float32)
    sampler = MapSampler.for_frame((72, 96), transform)
    boxes = _random_boxes(rng, 12, image_shape)
    masks, values = sample_linear_in_boxes(sampler, boxes, coefficients, protos, 0.1)
    want_masks, want_values = sample_in_boxes(sampler, boxes, functools.partial(_region, coefficients, protos), 0.1)
    assert len(masks) == len(values) == len(boxes)
    assert sum(m.size for m in masks) > 100_000  # whole-frame box included: the case is not trivial
    for box, mask, value, want_mask, want_value in zip(boxes, masks, values, want_masks, want_values):
        x0, y0, x1, y1 = box
        assert mask.shape == value.shape == want_mask.shape == (max(y1 - y0, 0), max(x1 - x0, 0))
        assert mask.dtype == np.bool_ and value.dtype == np.float32 and mask.flags.c_contiguous
        np.testing.assert_allclose(value, want_value, rtol=0, atol=1e-5)
        near = np.abs(want_value - np.float32(0.1)) < 1e-5  # a float32 rounding apart from the threshold
        np.testing.assert_array_equal(mask[~near], want_mask[~near])
        if mask.size > 400:  # a large box holds pixels on both sides of the threshold
            assert mask.any() and not mask.all()


def test_no_instances_give_no_masks() -> None:
    transform = make_transform((480, 640), PreprocessConfig(size=(288, 384), letterbox=True))
    sampler = MapSampler.for_frame((72, 96), transform)
    masks, values = sample_linear_in_boxes(sampler, np.zeros((0, 4), np.int32), np.zeros((0, 32), np.float32),
                                           np.zeros((32, 72, 96), np.float32), 0.0)
    assert masks == [] and values == []
