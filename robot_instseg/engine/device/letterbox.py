"""Letterbox on the device: the frame goes up once as uint8 and becomes the model's float tensor there.

The resize reproduces OpenCV's ``INTER_LINEAR`` for uint8 bit for bit, so the device tensor
equals the host ``preprocess`` tensor exactly and the model sees the same input either way.
OpenCV resizes in fixed point: 11-bit tap weights (2048 = 1.0), a horizontal pass kept as
int, then the vertical blend ``((b0 * (r0 >> 4)) >> 16) + ((b1 * (r1 >> 4)) >> 16) + 2) >> 2``
(its vectorised kernel). Columns clamp their taps at the border with weight 0 beyond it; rows
clamp the row index and keep the weights. ``test/engine/test_device_letterbox.py`` checks the
equality against ``cv2.resize`` on many sizes, so an OpenCV change that breaks it is caught.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from robot_instseg.engine.preprocess import LetterboxTransform, PreprocessConfig

if TYPE_CHECKING:
    import torch

WEIGHT_ONE = 2048  # OpenCV's INTER_RESIZE_COEF_SCALE


@dataclass(frozen=True)
class ResizeTaps:
    """Source indices and fixed-point weights along one axis (host arrays; uploaded once per size)."""

    first: np.ndarray  # int64 source index of the first tap
    second: np.ndarray  # int64 source index of the second tap
    weight_first: np.ndarray  # int32, out of WEIGHT_ONE
    weight_second: np.ndarray  # int32, WEIGHT_ONE - weight_first


def resize_taps(source: int, target: int, clamp_weights: bool) -> ResizeTaps:
    """OpenCV's INTER_LINEAR taps for resizing ``source`` pixels to ``target`` along one axis.

    ``clamp_weights`` is OpenCV's column rule (a tap past the border gets weight 0); rows keep
    the fractional weight and clamp only the index.
    """
    position = ((np.arange(target) + 0.5) * (source / target) - 0.5).astype(np.float32)
    start = np.floor(position).astype(np.int64)
    fraction = position - start.astype(np.float32)
    if clamp_weights:
        low, high = start < 0, start >= source - 1
        fraction[low | high] = 0.0
        start[low] = 0
        start[high] = source - 1
    weight = np.round((1.0 - fraction) * WEIGHT_ONE).astype(np.int32)
    first = np.clip(start, 0, source - 1)
    second = np.clip(start + 1, 0, source - 1)
    return ResizeTaps(first, second, weight, (WEIGHT_ONE - weight).astype(np.int32))


class DeviceLetterbox:
    """uint8 HxWx3 RGB tensor on the device -> float NCHW model input on the device.

    Taps are cached per (image size, resized size); one instance serves one model.
    """

    def __init__(self, config: PreprocessConfig, device: "torch.device", dtype: "torch.dtype") -> None:
        import torch

        self.config, self.device, self.dtype = config, device, dtype
        self._taps: dict[tuple[int, int, int, int], tuple] = {}
        scale = torch.full((3, 1, 1), float(config.scale), dtype=torch.float32)
        mean = torch.tensor(config.mean, dtype=torch.float32).reshape(3, 1, 1)
        std = torch.tensor(config.std, dtype=torch.float32).reshape(3, 1, 1)
        self._scale, self._mean, self._std = scale.to(device), mean.to(device), std.to(device)
        self._normalise = config.mean != (0.0, 0.0, 0.0) or config.std != (1.0, 1.0, 1.0)

    def _device_taps(self, h: int, w: int, new_h: int, new_w: int) -> tuple:
        key = (h, w, new_h, new_w)
        if key not in self._taps:
            import torch

            cols, rows = resize_taps(w, new_w, True), resize_taps(h, new_h, False)
            up = [torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
                  for a in (cols.first, cols.second, cols.weight_first, cols.weight_second,
                            rows.first, rows.second, rows.weight_first, rows.weight_second)]
            self._taps[key] = tuple(up)
        return self._taps[key]

    def resize(self, image: "torch.Tensor", new_h: int, new_w: int) -> "torch.Tensor":
        """uint8 HxWxC -> uint8 new_h x new_w x C, equal to ``cv2.resize(..., INTER_LINEAR)``."""
        import torch

        h, w = int(image.shape[0]), int(image.shape[1])
        if (h, w) == (new_h, new_w):
            return image
        c0, c1, wc0, wc1, r0, r1, wr0, wr1 = self._device_taps(h, w, new_h, new_w)
        pixels = image.to(torch.int32)
        across = pixels[:, c0] * wc0[None, :, None] + pixels[:, c1] * wc1[None, :, None]  # h, new_w, C
        top, bottom = across[r0] >> 4, across[r1] >> 4
        out = ((wr0[:, None, None] * top) >> 16) + ((wr1[:, None, None] * bottom) >> 16)
        return ((out + 2) >> 2).clamp_(0, 255).to(torch.uint8)

    def __call__(self, image: "torch.Tensor", transform: LetterboxTransform) -> "torch.Tensor":
        """The (1, 3, in_h, in_w) input tensor for ``image`` (RGB) under ``transform``."""
        import torch

        in_h, in_w = self.config.size
        h, w = transform.image_shape
        new_w, new_h = int(round(w * transform.scale_x)), int(round(h * transform.scale_y))
        resized = self.resize(image, new_h, new_w)
        canvas = resized
        if (new_h, new_w) != (in_h, in_w):
            top, left = int(transform.pad_y), int(transform.pad_x)
            canvas = torch.full((in_h, in_w, 3), self.config.pad_value, dtype=torch.uint8, device=self.device)
            canvas[top:top + new_h, left:left + new_w] = resized
        planes = canvas.permute(2, 0, 1)
        if self.config.channel_order == "bgr":
            planes = planes.flip(0)
        blob = planes.to(torch.float32) * self._scale
        if self._normalise:
            blob = (blob - self._mean) / self._std
        return blob.unsqueeze(0).to(self.dtype).contiguous()
