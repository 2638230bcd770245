"""Training augmentation in the model-input frame: one random affine (flip, scale, rotate,
translate) applied to the image and every mask alike, then colour, blur and noise.

Masks are warped with nearest-neighbour so they stay exact; instances that leave the frame
or shrink below ``min_pixels`` are dropped with their class.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths of the geometric and colour augmentations."""

    flip_lr: float = 0.5
    flip_ud: float = 0.0
    scale: tuple[float, float] = (0.7, 1.3)
    degrees: float = 10.0
    translate: float = 0.1  # fraction of the input size
    hsv: tuple[float, float, float] = (0.02, 0.4, 0.35)  # hue (fraction of 180), saturation, value gains
    blur: float = 0.2  # probability of a 3x3 or 5x5 Gaussian blur
    noise: float = 6.0  # max std of additive Gaussian noise (0..255)
    min_pixels: int = 12
    pad_value: int = 114

    @classmethod
    def off(cls) -> "AugmentConfig":
        return cls(flip_lr=0.0, scale=(1.0, 1.0), degrees=0.0, translate=0.0, hsv=(0.0, 0.0, 0.0), blur=0.0,
                   noise=0.0, min_pixels=1)


def random_affine(rng: np.random.Generator, shape: tuple[int, int], config: AugmentConfig) -> np.ndarray:
    """A 2x3 matrix: flip and scale/rotate about the centre, then shift.

    OpenCV maps pixel indices (pixel centres at integers), so the centre is ((w-1)/2, (h-1)/2)
    and a flip is x -> (w-1) - x: a pure mirror, no one-pixel shift.
    """
    h, w = shape
    centre = ((w - 1) / 2.0, (h - 1) / 2.0)
    angle = float(rng.uniform(-config.degrees, config.degrees))
    scale = float(rng.uniform(*config.scale))
    matrix = cv2.getRotationMatrix2D(centre, angle, scale)
    if rng.random() < config.flip_lr:
        matrix[0] = -matrix[0]
        matrix[0, 2] += w - 1
    if rng.random() < config.flip_ud:
        matrix[1] = -matrix[1]
        matrix[1, 2] += h - 1
    matrix[0, 2] += float(rng.uniform(-config.translate, config.translate)) * w
    matrix[1, 2] += float(rng.uniform(-config.translate, config.translate)) * h
    return matrix


def colour_jitter(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Random hue shift and saturation and value scaling (HSV) of an RGB image."""
    dh, ds, dv = config.hsv
    if not (dh or ds or dv):
        return image
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + int(rng.uniform(-dh, dh) * 180)) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(1 - ds, 1 + ds), 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * rng.uniform(1 - dv, 1 + dv), 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def augment(image: np.ndarray, masks: np.ndarray, classes: np.ndarray, rng: np.random.Generator,
            config: AugmentConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One random augmentation applied to an image and its instance masks alike."""
    h, w = image.shape[:2]
    matrix = random_affine(rng, (h, w), config)
    identity = np.allclose(matrix, [[1, 0, 0], [0, 1, 0]])
    if not identity:
        image = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                               borderValue=(config.pad_value,) * 3)
        if len(masks):
            # Up to 512 channels per call; warp the stack as HxWxn.
            stack = np.ascontiguousarray(masks.transpose(1, 2, 0).astype(np.uint8))
            warped = [cv2.warpAffine(stack[..., i:i + 256], matrix, (w, h), flags=cv2.INTER_NEAREST,
                                     borderValue=0) for i in range(0, stack.shape[2], 256)]
            warped = [x[..., None] if x.ndim == 2 else x for x in warped]
            masks = np.concatenate(warped, 2).transpose(2, 0, 1).astype(bool)
    image = colour_jitter(image, rng, config)
    if config.blur and rng.random() < config.blur:
        k = int(rng.choice([3, 5]))
        image = cv2.GaussianBlur(image, (k, k), 0)
    if config.noise:
        std = float(rng.uniform(0, config.noise))
        if std > 0.5:
            noise = rng.normal(0, std, image.shape).astype(np.float32)
            image = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if len(masks):
        keep = masks.reshape(len(masks), -1).sum(1) >= config.min_pixels
        masks, classes = masks[keep], classes[keep]
    return image, masks, classes
