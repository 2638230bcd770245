"""Domain randomisation for ``scenes --style randomised``, and a held-back look (``--style heldout``) for
measuring a model on scenery it was not trained on.

A Style is drawn from its own random stream (the scene seed and a fixed salt), so the objects,
their placement and the masks of a scene are drawn exactly as without it; only the pixels and
the object proportions change. What ``randomised`` varies:

- background: textured table, wooden planks, floor tiles, fabric, a plain gradient, or
  clutter (untargeted shapes of no class, which the model must learn to ignore);
- light: direction, colour temperature (a per-channel tint), strength of the shading;
- shadows cast by every object on what lies behind it, along the light;
- objects: proportions per class (width and height each 0.7-1.35), textured parts (stripes,
  labels, speckle), the dark rim on or off, specular highlights;
- camera: object size with distance (smaller towards the top of the image, a tilted view),
  motion blur, focus blur, sensor noise, JPEG compression.

``heldout`` uses none of those choices: a look kept out of training on purpose, so an
evaluation on it says how a model copes with scenery it has never seen. Flat cartoon colours
with thick outlines, a tiled-hexagon or ring background, two coloured lights, and shape
families with tapered or bulging outlines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

STYLES = ("default", "randomised", "heldout")
BACKGROUNDS = ("table", "planks", "tiles", "fabric", "gradient", "clutter")
HELDOUT_BACKGROUNDS = ("hexagons", "rings")
_SALT = 0x5EED


@dataclass(frozen=True)
class Style:
    """How one scene looks beyond its geometry."""

    family: str  # "randomised" or "heldout"
    background: str
    tint: tuple[float, float, float]  # per-channel gain of the light
    light: tuple[float, float]  # unit direction the light comes from, in the image plane
    shading: float  # strength of the shading gradient across an object (0..1)
    shadow: float  # darkness of cast shadows (0 = none)
    shadow_length: float  # shadow offset as a fraction of the object's size
    rim: bool  # dark outline of every part
    texture: float  # probability that a part is textured
    specular: float  # probability of a highlight on a part
    proportions: tuple[float, float]  # range of the per-object width and height factors
    perspective: float  # objects at the top of the image are this much smaller (0 = none)
    blur_sigma: float
    motion_blur: int  # kernel length in pixels (0 = none)
    noise_std: float
    jpeg_quality: int  # 0 = no compression

    @property
    def heldout(self) -> bool:
        return self.family == "heldout"


def style_rng(seed: int) -> np.random.Generator:
    """The style's own random stream: drawing it leaves the scene's geometry stream untouched."""
    return np.random.default_rng([seed, _SALT])


def draw_style(family: str, seed: int) -> Optional[Style]:
    """The Style of scene ``seed`` in ``family`` (None for the default look)."""
    if family not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {family!r}")
    if family == "default":
        return None
    rng = style_rng(seed)
    theta = rng.uniform(0, 2 * math.pi)
    if family == "heldout":
        return Style(family, str(rng.choice(HELDOUT_BACKGROUNDS)), (1.0, 1.0, 1.0), (math.cos(theta), math.sin(theta)),
                     0.0, 0.0, 0.0, True, 0.0, 0.0, (0.8, 1.25), 0.0, float(rng.uniform(0.3, 0.8)), 0,
                     float(rng.uniform(1, 4)), 0)
    kelvin = rng.uniform(-1, 1)  # warm (-1) .. cool (+1)
    tint = (1.0 - 0.18 * kelvin, 1.0 - 0.03 * abs(kelvin), 1.0 + 0.18 * kelvin)
    return Style(
        family="randomised", background=str(rng.choice(BACKGROUNDS)),
        tint=tuple(float(t * rng.uniform(0.75, 1.2)) for t in tint),  # type: ignore[arg-type]
        light=(math.cos(theta), math.sin(theta)), shading=float(rng.uniform(0.2, 0.8)),
        shadow=float(rng.uniform(0.15, 0.55)) if rng.random() < 0.7 else 0.0,
        shadow_length=float(rng.uniform(0.05, 0.3)), rim=bool(rng.random() < 0.6),
        texture=float(rng.uniform(0.0, 0.7)), specular=float(rng.uniform(0.0, 0.5)), proportions=(0.7, 1.35),
        perspective=float(rng.uniform(0.0, 0.5)), blur_sigma=float(rng.uniform(0.3, 1.6)),
        motion_blur=int(rng.choice([0, 0, 0, 5, 9, 13])), noise_std=float(rng.uniform(1, 9)),
        jpeg_quality=int(rng.choice([0, 0, 40, 60, 85])))


def reshape_points(points: np.ndarray, style: Style, rng: np.random.Generator) -> np.ndarray:
    """An object's unrotated outline with this style's proportions: scaled per axis (randomised), or
    tapered / bulged along its height (held out: a shape family training never sees)."""
    lo, hi = style.proportions
    sx, sy = rng.uniform(lo, hi), rng.uniform(lo, hi)
    out = points * (sx, sy)
    if style.heldout:
        span = max(float(np.ptp(out[:, 1])), 1.0)
        t = (out[:, 1] - out[:, 1].min()) / span  # 0 at the top .. 1 at the bottom
        k = rng.uniform(-0.45, 0.45)
        out[:, 0] *= 1.0 + k * (t - 0.5) * 2 if rng.random() < 0.5 else 1.0 + abs(k) * np.sin(t * math.pi)
    return out


def size_factor(style: Style, y: float, height: int) -> float:
    """Objects further away (higher in a tilted view) look smaller."""
    return 1.0 - style.perspective * (1.0 - y / max(height, 1))


def background(style: Style, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Float32 RGB background of this style."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(40, 210, 3).astype(np.float32)
    kind = style.background
    if kind == "planks":
        width = rng.uniform(30, 90)
        plank = np.floor((xx if rng.random() < 0.5 else yy) / width)
        shade = 0.85 + 0.3 * ((plank * 0.618) % 1.0)
        grain = np.sin(yy / rng.uniform(2, 5) + 3 * np.sin(xx / rng.uniform(20, 60))) * 0.05
        field = shade + grain
    elif kind == "tiles":
        size = rng.uniform(25, 80)
        tile = ((np.floor(xx / size) + np.floor(yy / size)) % 2) * rng.uniform(0.1, 0.35)
        grout = ((xx % size) < 2) | ((yy % size) < 2)
        field = 0.85 + tile - 0.3 * grout
    elif kind == "fabric":
        period = rng.uniform(3, 8)
        field = 0.9 + 0.08 * np.sin(xx / period) * np.sin(yy / period) + 0.05 * rng.normal(0, 1, (h, w))
    elif kind == "gradient":
        gx, gy = rng.uniform(-1, 1, 2)
        field = 0.8 + 0.4 * ((xx / w - 0.5) * gx + (yy / h - 0.5) * gy)
    elif kind == "hexagons":
        size = rng.uniform(20, 50)
        qx, qy = xx / size, (yy / size) * 1.1547
        cell = (np.floor(qx + 0.5 * (np.floor(qy) % 2)) + np.floor(qy)) % 3
        field = 0.75 + 0.2 * cell
    elif kind == "rings":
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        field = 0.8 + 0.2 * np.sign(np.sin(np.hypot(xx - cx, yy - cy) / rng.uniform(6, 20)))
    else:  # table (as the default look) or clutter
        coarse = cv2.resize(rng.normal(0, 1, (max(h // 40, 2), max(w // 40, 2))).astype(np.float32), (w, h),
                            interpolation=cv2.INTER_CUBIC)
        field = 1.0 + 0.06 * coarse + 0.04 * np.sin(xx / rng.uniform(3, 12) + coarse * 2.0)
    image = base[None, None, :] * field[..., None]
    if kind == "clutter":  # shapes of no class: the model must learn they are not objects
        for _ in range(int(rng.integers(4, 15))):
            colour = tuple(float(c) for c in rng.uniform(20, 235, 3))
            centre = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            if rng.random() < 0.5:
                axes = (int(rng.uniform(5, w / 8)), int(rng.uniform(5, h / 8)))
                cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
            else:
                end = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
                cv2.line(image, centre, end, colour, int(rng.integers(2, 12)))
    return image


def _texture(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A multiplicative texture: stripes, a label band, or speckle."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.integers(3)
    if kind == 0:
        angle = rng.uniform(0, math.pi)
        return 1.0 + 0.25 * np.sign(np.sin((xx * math.cos(angle) + yy * math.sin(angle)) / rng.uniform(3, 10)))
    if kind == 1:
        out = np.ones((h, w), np.float32)
        y0 = int(rng.uniform(0, h))
        out[y0:y0 + int(rng.uniform(8, 40))] = rng.uniform(0.4, 1.6)
        return out
    return 1.0 + 0.2 * rng.normal(0, 1, (h, w)).astype(np.float32)


def render(scene, style: Style) -> np.ndarray:
    """The scene's RGB pixels in ``style`` (uint8)."""
    h, w = scene.height, scene.width
    rng = np.random.default_rng([scene.seed, _SALT, 1])
    image = background(style, h, w, rng)
    if style.heldout:  # two coloured lights across the frame
        ramp = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
        image *= (1 - ramp) * np.array([1.15, 0.95, 0.8], np.float32) + ramp * np.array([0.8, 0.95, 1.2], np.float32)
    lx, ly = style.light
    for obj in scene.objects:
        silhouette = obj.silhouette((h, w))
        if style.shadow and silhouette.any():
            ys, xs = np.nonzero(silhouette)
            size = max(float(np.ptp(xs)), float(np.ptp(ys)), 1.0)
            shift = np.array([[1, 0, -lx * style.shadow_length * size], [0, 1, -ly * style.shadow_length * size]],
                             np.float32)
            cast = cv2.warpAffine(silhouette.astype(np.float32), shift, (w, h))
            cast = cv2.GaussianBlur(cast, (0, 0), max(1.0, 0.04 * size)) * ~silhouette
            image *= (1.0 - style.shadow * cast)[..., None]
        for part in obj.parts:
            mask = np.zeros((h, w), np.uint8)
            cv2.fillPoly(mask, [part.polygon], 1)
            ys, xs = np.nonzero(mask)
            if len(xs) == 0:
                continue
            colour = np.asarray(part.colour, np.float32)
            if style.heldout:  # flat cartoon colour
                values = np.repeat(colour[None, :], len(xs), 0)
            else:
                proj = xs * lx + ys * ly
                span = max(float(proj.max() - proj.min()), 1.0)
                shade = (1.0 - style.shading / 2) + style.shading * (proj - proj.min()) / span
                values = colour[None, :] * shade[:, None]
                if rng.random() < style.texture:
                    x0, y0 = xs.min(), ys.min()
                    texture = _texture((int(ys.max() - y0 + 1), int(xs.max() - x0 + 1)), rng)
                    values *= texture[ys - y0, xs - x0][:, None]
                if rng.random() < style.specular:
                    centre = np.array([xs.mean() - lx * 0.3 * np.ptp(xs), ys.mean() - ly * 0.3 * np.ptp(ys)])
                    d = np.hypot(xs - centre[0], ys - centre[1]) / max(np.ptp(xs), np.ptp(ys), 1)
                    values += (120 * np.exp(-(d / 0.15) ** 2))[:, None]
            image[ys, xs] = np.clip(values, 0, 255)
            if style.rim:
                thickness = 5 if style.heldout else 3
                edge = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((thickness, thickness), np.uint8)) > 0
                edge &= mask > 0
                image[edge] *= 0.1 if style.heldout else 0.6
    if not style.heldout:
        image *= np.asarray(style.tint, np.float32)[None, None, :]
    if style.motion_blur:
        kernel = np.zeros((style.motion_blur, style.motion_blur), np.float32)
        kernel[style.motion_blur // 2] = 1.0 / style.motion_blur
        rotation = cv2.getRotationMatrix2D(((style.motion_blur - 1) / 2,) * 2, float(rng.uniform(0, 180)), 1.0)
        line = np.asarray(cv2.warpAffine(kernel, rotation, kernel.shape), np.float32)
        image = np.asarray(cv2.filter2D(image, -1, line / max(float(line.sum()), 1e-6)), np.float32)
    image = np.asarray(cv2.GaussianBlur(image, (0, 0), style.blur_sigma), np.float32)
    image += rng.normal(0, style.noise_std, image.shape).astype(np.float32)
    out = np.clip(image, 0, 255).astype(np.uint8)
    if style.jpeg_quality:
        ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, style.jpeg_quality])
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if ok else None
        out = out if decoded is None else np.asarray(decoded, np.uint8)
    return out
