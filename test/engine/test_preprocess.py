"""Letterbox / resize round trips, accepted layouts, and what the engine refuses."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx_graphs import constant_output_model

from robot_instseg.engine import Segmenter
from robot_instseg.engine.errors import InputError, ModelError
from robot_instseg.engine.preprocess import PreprocessConfig, make_transform, preprocess, stride_aligned


@pytest.mark.parametrize("image_shape", [(480, 640), (1080, 1920), (333, 517), (640, 480), (100, 1000)])
@pytest.mark.parametrize("letterbox", [True, False])
def test_box_round_trips_within_half_a_pixel(image_shape, letterbox) -> None:
    rng = np.random.default_rng(sum(image_shape))
    config = PreprocessConfig(size=(640, 640), letterbox=letterbox)
    transform = make_transform(image_shape, config)
    h, w = image_shape
    boxes = np.sort(rng.uniform(0, [w, h, w, h], size=(50, 4)).reshape(50, 2, 2), axis=1).reshape(50, 4)
    boxes = boxes[:, [0, 1, 2, 3]]
    back = transform.to_image(transform.to_input(boxes))
    assert np.abs(back - boxes).max() < 0.5


def test_letterboxed_content_sits_where_the_transform_says() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    image[100:200, 300:400] = 255  # a white square
    config = PreprocessConfig(size=(320, 320))
    blob, transform = preprocess(image, config)
    assert blob.shape == (1, 3, 320, 320) and blob.dtype == np.float32
    x0, y0, x1, y1 = transform.to_input(np.array([[300, 100, 400, 200]], np.float32))[0]
    inside = blob[0, 0, int(y0) + 1:int(y1) - 1, int(x0) + 1:int(x1) - 1]
    assert inside.min() > 0.99
    assert blob[0, 0, 0, 0] == pytest.approx(114 / 255)  # padding, Ultralytics' grey
    assert transform.pad_y == 40 and transform.pad_x == 0


def test_channel_orders_and_layouts_give_the_same_tensor() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (48, 64, 3), np.uint8)
    config = PreprocessConfig(size=(64, 64))
    ref, _ = preprocess(rgb, config, "rgb")
    assert np.array_equal(preprocess(rgb[..., ::-1].copy(), config, "bgr")[0], ref)
    rgba = np.dstack([rgb, np.full((48, 64), 7, np.uint8)])
    assert np.array_equal(preprocess(rgba, config, "rgb")[0], ref)
    grey = rgb[..., 0]
    g, _ = preprocess(grey, config)
    assert np.array_equal(g[0, 0], g[0, 1]) and np.array_equal(g[0, 0], ref[0, 0])


@pytest.mark.parametrize("image_shape", [(480, 640), (333, 517), (640, 640), (100, 1000)])
@pytest.mark.parametrize("model_order", ["rgb", "bgr"])
def test_tensor_is_the_resized_image_scaled_plane_by_plane(image_shape, model_order) -> None:
    """The tensor, written in one compiled pass, holds what numpy's uint8 x float32 scale gives, in the
    model's channel order, at the transform's place, with the pad value around it."""
    rng = np.random.default_rng(image_shape[1])
    image = rng.integers(0, 256, (*image_shape, 3), np.uint8)
    config = PreprocessConfig(size=(288, 384), channel_order=model_order)
    blob, transform = preprocess(image, config, "rgb")
    h, w = int(round(image_shape[0] * transform.scale_y)), int(round(image_shape[1] * transform.scale_x))
    resized = image if (h, w) == image_shape else cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    expected = np.full((3, 288, 384), np.float32(114) * np.float32(config.scale), np.float32)
    top, left = int(transform.pad_y), int(transform.pad_x)
    planes = resized.transpose(2, 0, 1)[::-1 if model_order == "bgr" else 1]
    expected[:, top:top + h, left:left + w] = planes * np.float32(config.scale)
    assert np.array_equal(blob[0], expected)


def test_a_strided_view_at_the_input_size_gives_the_tensor_of_its_copy() -> None:
    """No resize: the image reaches the compiled pass as given, here a view that is not one block of memory."""
    big = np.random.default_rng(7).integers(0, 256, (576, 768, 3), np.uint8)
    config = PreprocessConfig(size=(288, 384))
    for view, order in ((big[::2, ::2], "rgb"), (big[:288, :384, ::-1], "bgr")):
        assert not view.flags.c_contiguous
        assert np.array_equal(preprocess(view, config, order)[0], preprocess(view.copy(), config, order)[0])


def test_dynamic_sizes_are_stride_aligned() -> None:
    assert stride_aligned((480, 641), 32) == (480, 672)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((48, 64, 3), np.float32), "dtype must be uint8"),
    (np.zeros((48, 64, 3), np.uint16), "dtype must be uint8"),
    (np.zeros((48, 64, 2), np.uint8), "shape must be"),
    (np.zeros((2, 48, 64, 3), np.uint8), "shape must be"),
    (np.zeros((0, 64, 3), np.uint8), "image is empty"),
    (np.zeros((48, 0), np.uint8), "image is empty"),
    ([[1, 2], [3, 4]], "must be a numpy array"),
])
def test_bad_images_are_refused_naming_the_problem(bad, message) -> None:
    with pytest.raises(InputError, match=message):
        preprocess(bad, PreprocessConfig(size=(64, 64)))


def test_unknown_channel_order_is_refused() -> None:
    with pytest.raises(InputError, match="channel_order"):
        preprocess(np.zeros((8, 8, 3), np.uint8), PreprocessConfig(size=(32, 32)), "yuv")


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model file .*nope\.onnx does not exist"):
        Segmenter(tmp_path / "nope.onnx")


@pytest.mark.parametrize("content", [b"", b"this is not an onnx model" * 10, b"\x08\x07" + bytes(range(256)) * 4])
def test_corrupt_model_file_is_named(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=r"broken\.onnx"):
        Segmenter(path)


def test_truncated_real_model_is_refused(tmp_path: Path) -> None:
    good = constant_output_model(tmp_path / "good.onnx", {"output0": np.zeros((1, 4 + 2 + 32, 100), np.float32),
                                                          "output1": np.zeros((1, 32, 160, 160), np.float32)})
    data = good.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"cut\.onnx could not be loaded"):
        Segmenter(cut)


def test_model_without_image_input_is_refused(tmp_path: Path) -> None:
    model = constant_output_model(tmp_path / "vec.onnx", {"output0": np.zeros((1, 38, 10), np.float32),
                                                          "output1": np.zeros((1, 32, 4, 4), np.float32)},
                                  input_shape=(1, 10))
    with pytest.raises(ModelError, match="not a 3-channel image"):
        Segmenter(model)
