"""The "basic" augmentation the bundled model was trained with (before issue 17), kept so that the
model card's recipe still reproduces it (``train --augment basic``): one random affine (flip,
scale, rotate, translate) applied to the image and every mask alike, then colour, blur and noise.

Masks are warped with nearest-neighbour so they stay exact; instances that leave the frame
or shrink below ``min_pixels`` are dropped with their class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import cv2
import numpy as np

from robot_instseg.train.augment import AugmentConfig, augment_instances, colour_jitter


@dataclass(frozen=True)
class BasicAugmentConfig:
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
    def off(cls) -> "BasicAugmentConfig":
        return cls(flip_lr=0.0, scale=(1.0, 1.0), degrees=0.0, translate=0.0, hsv=(0.0, 0.0, 0.0), blur=0.0,
                   noise=0.0, min_pixels=1)


def random_affine(rng: np.random.Generator, shape: tuple[int, int], config: BasicAugmentConfig) -> np.ndarray:
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


def basic_augment(image: np.ndarray, masks: np.ndarray, classes: np.ndarray, rng: np.random.Generator,
            config: BasicAugmentConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One random augmentation applied to an image and its instance masks alike."""
    image, masks, classes, _ = basic_augment_instances(image, masks, classes, None, rng, config)
    return image, masks, classes


def basic_augment_instances(image: np.ndarray, masks: np.ndarray, classes: np.ndarray, amodal: Optional[np.ndarray],
                            rng: np.random.Generator, config: BasicAugmentConfig
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """``basic_augment`` with each instance's amodal mask (or None) warped alike."""
    h, w = image.shape[:2]
    matrix = random_affine(rng, (h, w), config)
    identity = np.allclose(matrix, [[1, 0, 0], [0, 1, 0]])
    if not identity:
        image = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                               borderValue=(config.pad_value,) * 3)
        if len(masks):
            both = masks if amodal is None else np.concatenate([masks, amodal])
            # Up to 512 channels per call; warp the stack as HxWxn.
            stack = np.ascontiguousarray(both.transpose(1, 2, 0).astype(np.uint8))
            warped = [cv2.warpAffine(stack[..., i:i + 256], matrix, (w, h), flags=cv2.INTER_NEAREST,
                                     borderValue=0) for i in range(0, stack.shape[2], 256)]
            warped = [x[..., None] if x.ndim == 2 else x for x in warped]
            moved = np.concatenate(warped, 2).transpose(2, 0, 1).astype(bool)
            masks, amodal = (moved, None) if amodal is None else (moved[:len(masks)], moved[len(masks):])
    image = colour_jitter(image, rng, config.hsv)
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
        amodal = None if amodal is None else amodal[keep]
    return image, masks, classes, amodal


def augment_with(config: Union[AugmentConfig, BasicAugmentConfig], image: np.ndarray, masks: np.ndarray,
                 classes: np.ndarray, rng: np.random.Generator,
                 pick_donor: Callable[[], Optional[Sequence[Any]]], amodal: Optional[np.ndarray] = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Either recipe on one sample, amodal masks (or None) moved alike. ``pick_donor`` (another sample's
    image, masks, classes and amodal masks, for copy-paste) is called only by the full recipe, so the basic
    one draws from ``rng`` as it always did."""
    if isinstance(config, BasicAugmentConfig):
        return basic_augment_instances(image, masks, classes, amodal, rng, config)
    return augment_instances(image, masks, classes, amodal, rng, config, pick_donor())
