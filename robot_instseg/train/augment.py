"""Training augmentation in the model-input frame, applied to the image and every instance mask alike.

Geometry and photometry come from albumentations (MIT, 2.0.x; it keeps masks aligned with the
image through every warp and never interpolates them: nearest-neighbour, 0 outside), built
once per config. Two steps are ours: HSV jitter (kept from before, unit-tested) and copy-paste
of instances from another image of the batch, which albumentations 2.0 does not have.
Order: copy-paste, flips and affine (scale with aspect jitter, rotation, shear, shift),
perspective, then colour (HSV, brightness/contrast, gamma, white balance as a colour
temperature), shadows, blur or motion blur, noise, and cut-out (masks lose the pixels a
hole hides: annotations stay "visible pixels"). Instances that shrink below ``min_pixels``
are dropped with their class. Each probability is a field of AugmentConfig, recorded in the
checkpoint and the model card.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import cv2
import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations checks PyPI for updates unless told not to


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and strengths of every augmentation (0 turns one off)."""

    copy_paste: float = 0.5  # probability of pasting instances of another image of the batch
    copy_paste_max: int = 6  # most instances pasted
    flip_lr: float = 0.5
    flip_ud: float = 0.0
    scale: tuple[float, float] = (0.6, 1.4)
    aspect: float = 0.15  # x and y scales differ by up to this fraction
    degrees: float = 15.0
    shear: float = 4.0  # degrees
    translate: float = 0.1  # fraction of the input size
    perspective: float = 0.3  # probability of a perspective warp (corner shifts 2-6 % of the size)
    hsv: tuple[float, float, float] = (0.03, 0.5, 0.4)  # hue (fraction of the circle), saturation, value gains
    brightness_contrast: float = 0.5  # probability; +-25 % each
    gamma: float = 0.3  # probability; gamma 0.6-1.6
    white_balance: float = 0.4  # probability; colour temperature 3000-15000 K (Planckian)
    shadow: float = 0.3  # probability of 1-3 shadow polygons
    blur: float = 0.15  # probability of a Gaussian blur (3-7 px)
    motion_blur: float = 0.2  # probability of a motion blur (3-11 px)
    noise: float = 0.4  # probability of Gaussian sensor noise (std 1-6 % of the range)
    cutout: float = 0.3  # probability of 1-4 holes of 5-20 % of the size
    min_pixels: int = 12
    pad_value: int = 114

    @classmethod
    def off(cls) -> "AugmentConfig":
        """Every augmentation off (evaluation, exactness tests)."""
        return cls(copy_paste=0.0, flip_lr=0.0, scale=(1.0, 1.0), aspect=0.0, degrees=0.0, shear=0.0, translate=0.0,
                   perspective=0.0, hsv=(0.0, 0.0, 0.0), brightness_contrast=0.0, gamma=0.0, white_balance=0.0,
                   shadow=0.0, blur=0.0, motion_blur=0.0, noise=0.0, cutout=0.0, min_pixels=1)



def describe_augment(config: Any) -> dict[str, Any]:
    """An augmentation config (full or basic) as plain data, tuples as lists, with its recipe's name."""
    out = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
    return {"recipe": "full" if isinstance(config, AugmentConfig) else "basic", **out}


@functools.lru_cache(maxsize=8)
def _pipeline(config: AugmentConfig, shape: tuple[int, int]):
    """The albumentations Compose for ``config`` (None when every step in it is off)."""
    import albumentations as A

    h, w = shape
    fill = (config.pad_value,) * 3
    steps: list = []
    if config.flip_lr:
        steps.append(A.HorizontalFlip(p=config.flip_lr))
    if config.flip_ud:
        steps.append(A.VerticalFlip(p=config.flip_ud))
    lo, hi = config.scale
    if (lo, hi) != (1.0, 1.0) or config.aspect or config.degrees or config.shear or config.translate:
        aspect = (1.0 - config.aspect, 1.0 + config.aspect)
        steps.append(A.Affine(scale={"x": (lo * aspect[0], hi * aspect[1]), "y": (lo, hi)}, keep_ratio=False,
                              rotate=(-config.degrees, config.degrees), shear=(-config.shear, config.shear),
                              translate_percent=(-config.translate, config.translate),
                              interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST,
                              border_mode=cv2.BORDER_CONSTANT, fill=fill, fill_mask=0, p=1.0))
    if config.perspective:
        steps.append(A.Perspective(scale=(0.02, 0.06), keep_size=True, interpolation=cv2.INTER_LINEAR,
                                   mask_interpolation=cv2.INTER_NEAREST, border_mode=cv2.BORDER_CONSTANT,
                                   fill=fill, fill_mask=0, p=config.perspective))
    if config.brightness_contrast:
        steps.append(A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25,
                                                p=config.brightness_contrast))
    if config.gamma:
        steps.append(A.RandomGamma(gamma_limit=(60, 160), p=config.gamma))
    if config.white_balance:
        steps.append(A.PlanckianJitter(mode="blackbody", temperature_limit=(3000, 15000), p=config.white_balance))
    if config.shadow:
        steps.append(A.RandomShadow(shadow_roi=(0, 0, 1, 1), num_shadows_limit=(1, 3),
                                    shadow_intensity_range=(0.3, 0.7), p=config.shadow))
    if config.blur:
        steps.append(A.GaussianBlur(blur_limit=(3, 7), p=config.blur))
    if config.motion_blur:
        steps.append(A.MotionBlur(blur_limit=(3, 11), p=config.motion_blur))
    if config.noise:
        steps.append(A.GaussNoise(std_range=(0.01, 0.06), p=config.noise))
    if config.cutout:
        steps.append(A.CoarseDropout(num_holes_range=(1, 4), hole_height_range=(max(1, h // 20), max(2, h // 5)),
                                     hole_width_range=(max(1, w // 20), max(2, w // 5)), fill="random_uniform",
                                     fill_mask=0, p=config.cutout))
    return A.Compose(steps) if steps else None


def colour_jitter(image: np.ndarray, rng: np.random.Generator, hsv_gains: tuple[float, float, float]) -> np.ndarray:
    """Random hue shift (fraction of the circle) and saturation and value scaling of an RGB image."""
    dh, ds, dv = hsv_gains
    if not (dh or ds or dv):
        return image
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + int(rng.uniform(-dh, dh) * 180)) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(1 - ds, 1 + ds), 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * rng.uniform(1 - dv, 1 + dv), 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def copy_paste(image: np.ndarray, masks: np.ndarray, classes: np.ndarray, donor_image: np.ndarray,
               donor_masks: np.ndarray, donor_classes: np.ndarray, rng: np.random.Generator,
               most: int, amodal: Optional[np.ndarray] = None,
               donor_amodal: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Paste up to ``most`` instances of a donor image (same size) on top: their pixels replace the
    image's, the masks underneath lose what the pasted ones cover, and the pasted ones are appended.
    ``amodal`` (whole masks, one per instance) keep what is covered; the pasted ones bring the donor's
    (``donor_amodal``, else their visible masks)."""
    if not len(donor_masks) or donor_image.shape != image.shape:
        return image, masks, classes, amodal
    count = int(rng.integers(1, min(most, len(donor_masks)) + 1))
    chosen = np.sort(rng.choice(len(donor_masks), count, replace=False))
    pasted, pasted_classes = donor_masks[chosen], donor_classes[chosen]
    pasted_amodal = donor_amodal[chosen] if donor_amodal is not None else pasted
    if rng.random() < 0.5:  # mirrored, so a pasted object does not sit where it was photographed
        donor_image, pasted, pasted_amodal = donor_image[:, ::-1], pasted[:, :, ::-1], pasted_amodal[:, :, ::-1]
    cover = pasted.any(axis=0)
    out = image.copy()
    out[cover] = donor_image[cover]
    kept = masks & ~cover[None] if len(masks) else masks
    joined = None if amodal is None else np.concatenate([amodal, pasted_amodal]).astype(bool)
    return out, np.concatenate([kept, pasted]).astype(bool), np.concatenate([classes, pasted_classes]), joined


def augment(image: np.ndarray, masks: np.ndarray, classes: np.ndarray, rng: np.random.Generator,
            config: AugmentConfig, donor: Optional[Sequence[np.ndarray]] = None) -> tuple[np.ndarray, np.ndarray,
                                                                                          np.ndarray]:
    """One random augmentation of an image and its instance masks; ``donor`` = (image, masks, classes)
    of another sample for copy-paste. Deterministic for a given ``rng`` state."""
    image, masks, classes, _ = augment_instances(image, masks, classes, None, rng, config, donor)
    return image, masks, classes


def augment_instances(image: np.ndarray, masks: np.ndarray, classes: np.ndarray, amodal: Optional[np.ndarray],
                      rng: np.random.Generator, config: AugmentConfig,
                      donor: Optional[Sequence[Any]] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                      Optional[np.ndarray]]:
    """``augment`` with each instance's amodal mask (or None) moved alike: every warp moves it with its
    visible mask; copy-paste and cut-out hide only visible pixels (cut-out's holes, filled on every mask
    channel, also clip the amodal one: a small disagreement, kept for one warp call). ``donor`` may carry
    a fourth item, its amodal masks."""
    masks = np.asarray(masks, bool)
    if donor is not None and config.copy_paste and rng.random() < config.copy_paste:
        donor_amodal = np.asarray(donor[3], bool) if len(donor) > 3 and donor[3] is not None else None
        image, masks, classes, amodal = copy_paste(image, masks, classes, donor[0], np.asarray(donor[1], bool),
                                                   np.asarray(donor[2]), rng, config.copy_paste_max, amodal,
                                                   donor_amodal)
    pipeline = _pipeline(config, image.shape[:2])
    if pipeline is not None:
        pipeline.set_random_seed(int(rng.integers(2 ** 31 - 1)))
        if len(masks):  # one H x W x N mask: each warp moves every instance in one OpenCV call
            stack = masks if amodal is None else np.concatenate([masks, np.asarray(amodal, bool)])
            result = pipeline(image=image, mask=np.ascontiguousarray(stack.transpose(1, 2, 0), np.uint8))
            moved = np.asarray(result["mask"]).reshape(*image.shape[:2], len(stack)).transpose(2, 0, 1) > 0
            masks, amodal = (moved, None) if amodal is None else (moved[:len(masks)], moved[len(masks):])
        else:
            result = pipeline(image=image)
        image = result["image"]
    image = colour_jitter(np.ascontiguousarray(image), rng, config.hsv)
    if len(masks):
        keep = masks.reshape(len(masks), -1).sum(1) >= config.min_pixels
        masks, classes = masks[keep], classes[keep]
        amodal = None if amodal is None else amodal[keep]
    return image, masks, classes, amodal
