"""Image -> model input tensor, and the exact map from model-input pixels back to the image.

Letterbox keeps the aspect ratio and pads (Ultralytics' convention: centred, pad value 114);
plain resize stretches. Either way ``LetterboxTransform`` maps coordinates both ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from robot_instseg.engine.errors import InputError
from robot_instseg.jit import kernel, warmer

CHANNEL_ORDERS = ("rgb", "bgr")


@dataclass(frozen=True)
class PreprocessConfig:
    """How a model wants its input. ``size`` is (height, width) of the tensor."""

    size: tuple[int, int] = (640, 640)
    letterbox: bool = True
    channel_order: str = "rgb"  # what the MODEL expects
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # subtracted after scaling, model channel order
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    pad_value: int = 114


@dataclass(frozen=True)
class LetterboxTransform:
    """input_xy = image_xy * scale + pad, per axis; continuous pixel-edge coordinates."""

    image_shape: tuple[int, int]  # (h, w) of the original image
    input_shape: tuple[int, int]  # (h, w) of the model input
    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    letterbox: bool = False  # True: aspect kept and padded; False: stretched to fill the input

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Map (..., 2k) input-pixel x, y pairs to original-image pixels (no clipping)."""
        out = np.array(xy, np.float32, copy=True)
        out[..., 0::2] = (out[..., 0::2] - self.pad_x) / self.scale_x
        out[..., 1::2] = (out[..., 1::2] - self.pad_y) / self.scale_y
        return out

    def to_input(self, xy: np.ndarray) -> np.ndarray:
        """Map (..., 2k) original-image x, y pairs to model-input pixels."""
        out = np.array(xy, np.float32, copy=True)
        out[..., 0::2] = out[..., 0::2] * self.scale_x + self.pad_x
        out[..., 1::2] = out[..., 1::2] * self.scale_y + self.pad_y
        return out

    def clip_boxes(self, boxes: np.ndarray) -> np.ndarray:
        h, w = self.image_shape
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h)
        return boxes


def stride_aligned(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """Round (h, w) up to multiples of ``stride``, for models with dynamic input sizes."""
    return tuple(int(-(-s // stride) * stride) for s in size)  # type: ignore[return-value]


def as_three_channels(image: np.ndarray, channel_order: str = "rgb") -> np.ndarray:
    """Check an image and return it as uint8 HxWx3 in RGB order.

    Accepts uint8 HxW (grey), HxWx1, HxWx3 and HxWx4 (alpha dropped) in ``channel_order``.
    """
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy array, got {type(image).__name__}")
    if channel_order not in CHANNEL_ORDERS:
        raise InputError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    if image.dtype != np.uint8:
        raise InputError(f"image dtype must be uint8, got {image.dtype} (scale 16-bit or float images to 0..255 "
                         f"uint8 first)")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise InputError(f"image shape must be HxW, HxWx1, HxWx3 or HxWx4, got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError(f"image is empty: shape {image.shape}")
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB if channel_order == "rgb" else cv2.COLOR_BGRA2RGB)
    if channel_order == "bgr":
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def make_transform(image_shape: tuple[int, int], config: PreprocessConfig) -> LetterboxTransform:
    """The letterbox (or stretch) mapping from an image of ``image_shape`` to the model input."""
    h, w = image_shape
    in_h, in_w = config.size
    if not config.letterbox:
        return LetterboxTransform(image_shape, config.size, in_w / w, in_h / h, 0.0, 0.0)
    scale = min(in_w / w, in_h / h)
    # At least one pixel: a 20000x1 frame scales its height to 0.02 px, which no resize accepts.
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    pad_x, pad_y = (in_w - new_w) // 2, (in_h - new_h) // 2
    # The exact scale of the resized content (rounding can differ from ``scale`` by < 1 px).
    return LetterboxTransform(image_shape, config.size, new_w / w, new_h / h, float(pad_x), float(pad_y), True)


def preprocess(image: np.ndarray, config: PreprocessConfig, channel_order: str = "rgb",
               out: Optional[np.ndarray] = None) -> tuple[np.ndarray, LetterboxTransform]:
    """Return the float32 NCHW tensor for ``image`` and the transform back to it.

    ``out``, when given with the right shape, is filled and returned instead of a new array
    (the Segmenter reuses one buffer per model).
    """
    rgb = as_three_channels(image, channel_order)
    transform = make_transform(rgb.shape[:2], config)
    in_h, in_w = config.size
    new_w = int(round(transform.image_shape[1] * transform.scale_x))
    new_h = int(round(transform.image_shape[0] * transform.scale_y))
    resized = rgb if (new_h, new_w) == rgb.shape[:2] else cv2.resize(rgb, (new_w, new_h),
                                                                      interpolation=cv2.INTER_LINEAR)
    if out is None or out.shape != (1, 3, in_h, in_w) or out.dtype != np.float32:
        out = np.empty((1, 3, in_h, in_w), np.float32)
    blob = out
    scale = np.float32(config.scale)
    top, left = int(transform.pad_y), int(transform.pad_x)
    if (new_h, new_w) != (in_h, in_w):  # the letterbox's bands: the pad value, scaled as a pixel is
        pad = np.float32(config.pad_value) * scale
        blob[0, :, :top] = pad
        blob[0, :, top + new_h:] = pad
        blob[0, :, top:top + new_h, :left] = pad
        blob[0, :, top:top + new_h, left + new_w:] = pad
    # uint8 HWC -> scaled float32 CHW in one pass straight into the (reusable) tensor: no planes split
    # out, no padded copy of the image (cv2.dnn.blobFromImage does the same job about 8x slower here).
    _scaled_planes(np.ascontiguousarray(resized), blob[0, :, top:top + new_h, left:left + new_w], scale,
                   config.channel_order == "bgr")
    if config.mean != (0.0, 0.0, 0.0) or config.std != (1.0, 1.0, 1.0):
        blob[0] -= np.asarray(config.mean, np.float32).reshape(3, 1, 1)
        blob[0] /= np.asarray(config.std, np.float32).reshape(3, 1, 1)
    return blob, transform


@kernel
def _scaled_planes(image: np.ndarray, out: np.ndarray, scale: np.float32, reverse: bool) -> None:
    """out[c] = image[..., c] (uint8, HxWx3, C order) x scale in float32, as numpy's multiply rounds; ``reverse``:
    the channels in the opposite order. Each row is read as one flat run from the channel's first byte in
    steps of 3: indexing image[r, col, c] instead kept the loop scalar, three times slower."""
    height, width = image.shape[0], image.shape[1]
    rows = image.reshape(height, width * 3)
    for c in range(3):
        source = 2 - c if reverse else c
        for r in range(height):
            channel, plane_row = rows[r, source:], out[c, r]
            for col in range(width):
                plane_row[col] = np.float32(channel[3 * col]) * scale


@warmer
def _warm() -> None:
    _scaled_planes(np.zeros((2, 2, 3), np.uint8), np.zeros((3, 2, 2), np.float32), np.float32(1.0), False)
