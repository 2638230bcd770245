"""Seeded synthetic tabletop scenes with exact visible-part and amodal instance masks, written as COCO.

A scene is a list of objects, each a few filled polygons (silhouette parts) of one class,
painted back to front: later objects occlude earlier ones. An object's annotation is its
silhouette minus every later silhouette, i.e. exactly the pixels where it is visible.
Placements that would leave an earlier object mostly hidden are re-drawn, so every
annotated instance is substantial. Blur and noise are applied to the image only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from robot_instseg.synthetic.style import Style, draw_style, reshape_points, size_factor, style_rng

CLASSES = ("cup", "bowl", "box", "bottle", "can", "tool")
MIN_VISIBLE_FRACTION = 0.35  # default: every object shows at least this much of itself (scenes --min-visible)
MIN_VISIBLE_PIXELS = 150


@dataclass
class Part:
    """One filled polygon of an object, with its colour."""

    polygon: np.ndarray  # (K, 2) int32 image points
    colour: tuple[float, float, float]  # RGB 0..255 before lighting


@dataclass
class SceneObject:
    """One object: its class, its polygons and the direction of its shading."""

    class_id: int
    parts: list[Part]
    light_dir: tuple[float, float]  # direction of the shading gradient across the object

    def silhouette(self, shape: tuple[int, int]) -> np.ndarray:
        mask = np.zeros(shape, np.uint8)
        for part in self.parts:
            cv2.fillPoly(mask, [part.polygon], 1)
        return mask.astype(bool)


@dataclass
class Scene:
    """A tabletop image: objects in drawing order (later ones occlude earlier ones); renders pixels and masks."""

    height: int
    width: int
    objects: list[SceneObject]
    seed: int
    style: Optional[Style] = None  # None: the default look; else synthetic.style renders it

    def amodal_masks(self) -> list[np.ndarray]:
        """Each object's whole silhouette within the image, occluded parts included."""
        return [obj.silhouette((self.height, self.width)) for obj in self.objects]

    def visible_masks(self, amodal: Optional[list[np.ndarray]] = None) -> list[np.ndarray]:
        """Mask algebra: each silhouette minus the union of all later ones (``amodal``: the silhouettes,
        when the caller has them)."""
        silhouettes = self.amodal_masks() if amodal is None else amodal
        covered = np.zeros((self.height, self.width), bool)
        visible = []
        for sil in reversed(silhouettes):
            visible.append(sil & ~covered)
            covered |= sil
        return visible[::-1]

    def render_ids(self) -> np.ndarray:
        """Painter's render of object index + 1 (uint16): an independent view of visibility."""
        ids = np.zeros((self.height, self.width), np.uint16)
        for index, obj in enumerate(self.objects):
            for part in obj.parts:
                cv2.fillPoly(ids, [part.polygon], index + 1)
        return ids

    def render_rgb(self) -> np.ndarray:
        if self.style is not None:
            from robot_instseg.synthetic.style import render

            return render(self, self.style)
        rng = np.random.default_rng(self.seed + 7919)
        image = _table(self.height, self.width, rng)
        for obj in self.objects:
            dx, dy = obj.light_dir
            for part in obj.parts:
                mask = np.zeros((self.height, self.width), np.uint8)
                cv2.fillPoly(mask, [part.polygon], 1)
                ys, xs = np.nonzero(mask)
                if len(xs) == 0:
                    continue
                proj = xs * dx + ys * dy
                span = max(float(proj.max() - proj.min()), 1.0)
                shade = 0.7 + 0.5 * (proj - proj.min()) / span
                colour = np.asarray(part.colour, np.float32)
                image[ys, xs] = np.clip(colour[None, :] * shade[:, None], 0, 255)
                # A darker rim makes parts read as solids.
                edge = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)).astype(bool) & (mask > 0)
                image[edge] *= 0.6
        image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.4, 1.2)))
        image += rng.normal(0, rng.uniform(2, 6), image.shape).astype(np.float32)
        return np.clip(image, 0, 255).astype(np.uint8)


def _table(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Textured table top under a lighting gradient (float32 RGB)."""
    base = rng.uniform(60, 200, 3).astype(np.float32)
    coarse = cv2.resize(rng.normal(0, 1, (max(h // 40, 2), max(w // 40, 2))).astype(np.float32), (w, h),
                        interpolation=cv2.INTER_CUBIC)
    grain_angle = rng.uniform(0, math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grain = np.sin((xx * math.cos(grain_angle) + yy * math.sin(grain_angle)) / rng.uniform(3, 12)
                   + coarse * 2.0)
    texture = 1.0 + 0.06 * coarse + 0.04 * grain
    gx, gy = rng.uniform(-1, 1, 2)
    light = 0.75 + 0.5 * ((xx / w - 0.5) * gx + (yy / h - 0.5) * gy + 0.5)
    return base[None, None, :] * (texture * light)[..., None]


def rotate_points(points: np.ndarray, angle: float, centre: tuple[float, float]) -> np.ndarray:
    """Points rotated by ``angle`` about the origin, moved to ``centre`` and rounded to pixels (int32)."""
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]], np.float64)
    return (points @ rot.T + np.asarray(centre)).round().astype(np.int32)


def _ellipse(cx: float, cy: float, ax: float, ay: float, start: int = 0, end: int = 360) -> np.ndarray:
    poly = np.asarray(cv2.ellipse2Poly((0, 0), (max(int(ax), 1), max(int(ay), 1)), 0, start, end, 10))
    return poly.astype(np.float64) + (cx, cy)


def _colour(rng: np.random.Generator, lo: int = 30, hi: int = 240) -> tuple[float, float, float]:
    r, g, b = (float(v) for v in rng.uniform(lo, hi, 3))
    return r, g, b


def _lighter(colour, k: float = 1.25) -> tuple[float, float, float]:
    return tuple(min(255.0, c * k + 15) for c in colour)


def object_parts(class_id: int, size: float, rng: np.random.Generator) -> list[tuple[np.ndarray, tuple]]:
    """Silhouette parts of one object around (0, 0), unrotated, with their colours."""
    name = CLASSES[class_id]
    colour = _colour(rng)
    if name == "cup":
        w, h = size * 0.7, size * 0.8
        body = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w * 0.4, h / 2], [-w * 0.4, h / 2]])
        handle = _ellipse(w * 0.55, 0, w * 0.28, h * 0.28)
        return [(handle, _lighter(colour, 0.8)), (body, colour), (_ellipse(0, -h / 2, w / 2, h * 0.08),
                                                                   _lighter(colour, 0.6))]
    if name == "bowl":
        w, h = size * 1.2, size * 0.55
        body = _ellipse(0, 0, w / 2, h, 0, 180)
        rim = _ellipse(0, 0, w / 2, h * 0.22)
        return [(body, colour), (rim, _lighter(colour))]
    if name == "box":
        w, h, d = size * rng.uniform(0.7, 1.1), size * rng.uniform(0.5, 0.9), size * 0.3
        front = np.array([[-w / 2, -h / 2 + d], [w / 2, -h / 2 + d], [w / 2, h / 2], [-w / 2, h / 2]])
        top = np.array([[-w / 2, -h / 2 + d], [-w / 2 + d, -h / 2], [w / 2 + d, -h / 2], [w / 2, -h / 2 + d]])
        side = np.array([[w / 2, -h / 2 + d], [w / 2 + d, -h / 2], [w / 2 + d, h / 2 - d], [w / 2, h / 2]])
        return [(front, colour), (top, _lighter(colour)), (side, _lighter(colour, 0.7))]
    if name == "bottle":
        w, h = size * 0.38, size * 1.3
        body = np.array([[-w / 2, -h * 0.15], [w / 2, -h * 0.15], [w / 2, h / 2], [-w / 2, h / 2]])
        shoulder = np.array([[-w / 2, -h * 0.15], [-w * 0.18, -h * 0.35], [w * 0.18, -h * 0.35], [w / 2, -h * 0.15]])
        neck = np.array([[-w * 0.18, -h * 0.35], [w * 0.18, -h * 0.35], [w * 0.18, -h * 0.47], [-w * 0.18, -h * 0.47]])
        cap = np.array([[-w * 0.22, -h * 0.47], [w * 0.22, -h * 0.47], [w * 0.22, -h / 2], [-w * 0.22, -h / 2]])
        return [(body, colour), (shoulder, colour), (neck, colour), (cap, _colour(rng))]
    if name == "can":
        w, h = size * 0.55, size * 0.85
        body = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
        bottom = _ellipse(0, h / 2, w / 2, w * 0.15, 0, 180)
        top = _ellipse(0, -h / 2, w / 2, w * 0.15)
        return [(body, colour), (bottom, colour), (top, (200.0, 200.0, 205.0))]
    # tool: a handle and a metal head touching it (one connected silhouette)
    length, thick = size * 1.5, size * 0.16
    if rng.random() < 0.5:  # screwdriver: a thin shaft continues the handle
        handle_end = length * 0.15
        head = np.array([[handle_end, -thick * 0.25], [length / 2, -thick * 0.25], [length / 2, thick * 0.25],
                         [handle_end, thick * 0.25]])
    else:  # hammer: a cross-piece over the handle's end
        handle_end = length * 0.4
        head = np.array([[length * 0.3, -thick * 1.6], [length * 0.45, -thick * 1.6], [length * 0.45, thick * 1.6],
                         [length * 0.3, thick * 1.6]])
    handle = np.array([[-length / 2, -thick / 2], [handle_end, -thick / 2], [handle_end, thick / 2],
                       [-length / 2, thick / 2]])
    return [(handle, colour), (head, (150.0, 150.0, 160.0))]


def generate_scene(seed: int, height: int = 480, width: int = 640, min_objects: int = 3,
                   max_objects: int = 20, style: str = "default",
                   min_visible: float = MIN_VISIBLE_FRACTION) -> Scene:
    """One scene, fully determined by ``seed``, ``style`` (synthetic.style: default, randomised, heldout)
    and ``min_visible``: the fraction of itself every object keeps visible. Lower it for clutter (a
    robot's clips pass objects behind each other down to a sliver, which 0.35 never shows a model)."""
    rng = np.random.default_rng(seed)
    look = draw_style(style, seed)
    shapes = style_rng(seed + 1) if look is not None else None  # proportions: a stream of their own
    wanted = int(rng.integers(min_objects, max_objects + 1))
    scene = Scene(height, width, [], seed, look)
    shape = (height, width)
    scale = min(height, width)
    for _ in range(wanted * 4):
        if len(scene.objects) >= wanted:
            break
        class_id = int(rng.integers(len(CLASSES)))
        size = float(rng.uniform(0.10, 0.28) * scale)
        centre = (float(rng.uniform(0.05, 0.95) * width), float(rng.uniform(0.05, 0.95) * height))
        angle = float(rng.uniform(-math.pi, math.pi)) if CLASSES[class_id] in ("tool", "box") else \
            float(rng.normal(0, 0.35))
        outlines = object_parts(class_id, size, rng)
        if look is not None and shapes is not None:
            factor = size_factor(look, centre[1], height)
            outlines = [(reshape_points(points, look, shapes) * factor, colour) for points, colour in outlines]
        parts = [Part(rotate_points(points, angle, centre), colour) for points, colour in outlines]
        theta = rng.uniform(0, 2 * math.pi)
        candidate = SceneObject(class_id, parts, (math.cos(theta), math.sin(theta)))
        sil = candidate.silhouette(shape)
        if sil.sum() < MIN_VISIBLE_PIXELS:
            continue
        trial = Scene(height, width, scene.objects + [candidate], seed, look)
        visible = trial.visible_masks()
        full = [o.silhouette(shape).sum() for o in trial.objects]
        if all(v.sum() >= max(MIN_VISIBLE_PIXELS, min_visible * f) for v, f in zip(visible, full)):
            scene = trial
    return scene


def scene_annotations(scene: Scene, image_id: int, first_annotation_id: int) -> list[dict]:
    """COCO annotations of one scene: RLE masks of the visible pixels, with the amodal ground truth
    (``synthetic.occlusion``)."""
    return [ann for _, ann in object_annotations(scene, image_id, first_annotation_id)]


def object_annotations(scene: Scene, image_id: int, first_annotation_id: int,
                       min_area: int = 0) -> list[tuple[int, dict]]:
    """(object index, COCO annotation) of every object with at least ``min_area`` visible pixels, ids
    consecutive from ``first_annotation_id``; ``occluded_by`` names only annotated objects."""
    from pycocotools import mask as mask_utils

    from robot_instseg.synthetic.occlusion import amodal_fields, occluded_by, occlusions

    amodal = scene.amodal_masks()
    visible = scene.visible_masks(amodal)
    annotations: list[tuple[int, dict]] = []
    for index, (obj, mask) in enumerate(zip(scene.objects, visible)):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        area = int(mask_utils.area(rle))
        if area < min_area:
            continue
        bbox = [float(v) for v in mask_utils.toBbox(rle)]
        rle["counts"] = rle["counts"].decode("ascii")
        annotations.append((index, {"id": first_annotation_id + len(annotations), "image_id": image_id,
                                    "category_id": obj.class_id + 1, "segmentation": rle, "area": area,
                                    "bbox": bbox, "iscrowd": 0, **amodal_fields(amodal[index], area)}))
    order = occluded_by(occlusions(amodal, visible), {index: ann["id"] for index, ann in annotations})
    for index, ann in annotations:
        ann["occluded_by"] = order[index]
    return annotations


def scene_seed(seed: int, index: int) -> int:
    """Per-image seed: image i of a set is the same whatever the count or order of generation."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
