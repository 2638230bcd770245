"""Seeded clips of a tabletop seen by a robot camera, with persistent ground-truth object ids.

Each clip has ``objects`` objects drawn in a fixed order (later ones pass in front of earlier
ones) that slide at 1-6 px per frame and turn, bouncing inside bounds wider than the image, so
they pass behind each other, leave the view and come back. The camera jitters by about a pixel
per frame, and a few frames are dropped (a camera or transport hiccup): their stamps are
missing from the clip. Per frame, every object with at least MIN_VISIBLE_PIXELS visible pixels
is annotated with its visible mask and its id.

Written COCO-video style: ``videos``, images with ``video_id``, ``frame_index`` and
``stamp_s``, annotations with ``track_id`` (unique over the whole file).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import cv2
import numpy as np

from robot_instseg.synthetic.scenes import (
    CLASSES,
    MIN_VISIBLE_PIXELS,
    Part,
    Scene,
    SceneObject,
    object_annotations,
    object_parts,
    rotate_points,
)
from robot_instseg.synthetic.style import draw_style

FPS = 15.0
MARGIN = 0.15  # objects roam this fraction of the width beyond each side of the image


@dataclass
class Mover:
    """One object of a clip: its shape in its own frame and its motion."""

    class_id: int
    parts: list[tuple[np.ndarray, tuple]]  # (points around (0, 0), colour)
    x: float
    y: float
    vx: float
    vy: float
    angle: float
    spin: float
    light: tuple[float, float]

    def step(self, width: int, height: int) -> None:
        self.x += self.vx
        self.y += self.vy
        lo_x, hi_x = -MARGIN * width, (1 + MARGIN) * width
        if not lo_x <= self.x <= hi_x:
            self.vx = -self.vx
            self.x = min(max(self.x, lo_x), hi_x)
        if not 0.1 * height <= self.y <= 0.9 * height:
            self.vy = -self.vy
            self.y = min(max(self.y, 0.1 * height), 0.9 * height)
        self.angle += self.spin

    def placed(self, dx: float, dy: float) -> SceneObject:
        return SceneObject(self.class_id, [Part(rotate_points(points, self.angle, (self.x + dx, self.y + dy)), colour)
                                          for points, colour in self.parts], self.light)


@dataclass
class ClipFrame:
    """One kept frame of a clip: its index in the camera's stream, stamp, scene and object ids."""

    index: int
    stamp_s: float
    scene: Scene
    object_ids: list[int]  # id of each of scene.objects (1-based within the clip)


def generate_clip(seed: int, frames: int = 150, objects: int = 10, height: int = 480, width: int = 640,
                  dropped: float = 0.03, style: str = "default") -> Iterator[ClipFrame]:
    """The kept frames of one clip, fully determined by ``seed`` and ``style`` (the clip's look, one for all its
    frames: synthetic.style's background, light and colours; the objects keep their proportions); frames are
    rendered lazily."""
    look = draw_style(style, seed)
    rng = np.random.default_rng([seed, 0x5E9])
    scale = min(height, width)
    movers = []
    for _ in range(objects):
        class_id = int(rng.integers(len(CLASSES)))
        size = float(rng.uniform(0.12, 0.24) * scale)
        speed, heading = float(rng.uniform(1.0, 6.0)), float(rng.uniform(0, 2 * math.pi))
        spin = float(rng.normal(0, 0.02)) if CLASSES[class_id] in ("tool", "box") else float(rng.normal(0, 0.004))
        theta = rng.uniform(0, 2 * math.pi)
        movers.append(Mover(class_id, object_parts(class_id, size, rng), float(rng.uniform(0, width)),
                            float(rng.uniform(0.15, 0.85) * height), speed * math.cos(heading),
                            0.35 * speed * math.sin(heading), float(rng.normal(0, 0.3)), spin,
                            (math.cos(theta), math.sin(theta))))
    for index in range(frames):
        dx, dy = rng.normal(0, 1.0, 2)
        keep = rng.random() >= dropped
        if keep:
            placed = [m.placed(float(dx), float(dy)) for m in movers]
            yield ClipFrame(index, index / FPS, Scene(height, width, placed, seed, look),
                            list(range(1, objects + 1)))
        for mover in movers:
            mover.step(width, height)


def clip_annotations(frame: ClipFrame, image_id: int, first_id: int, track_offset: int) -> list[dict]:
    """COCO annotations of the objects visible enough in this frame, each with its ``track_id``."""
    out = object_annotations(frame.scene, image_id, first_id, min_area=MIN_VISIBLE_PIXELS)
    for index, ann in out:
        ann["track_id"] = track_offset + frame.object_ids[index]
    return [ann for _, ann in out]


def write_sequences(out: Path, clips: int, seed: int, frames: int = 150, objects: int = 10, height: int = 480,
                    width: int = 640, progress: Optional[Callable[[int], object]] = None,
                    classes: Sequence[str] = CLASSES, style: str = "default") -> Path:
    """Write ``out/images/<clip>/*.png`` and ``out/annotations.json`` (COCO-video style, see the module)."""
    out = Path(out)
    videos: list[dict] = []
    images: list[dict] = []
    annotations: list[dict] = []
    for clip in range(clips):
        name = f"clip{clip:03d}"
        (out / "images" / name).mkdir(parents=True, exist_ok=True)
        videos.append({"id": clip + 1, "name": name, "fps": FPS})
        for frame in generate_clip(seed * 1000 + clip, frames, objects, height, width, style=style):
            image_id = len(images) + 1
            file_name = f"images/{name}/{frame.index:06d}.png"
            if not cv2.imwrite(str(out / file_name), cv2.cvtColor(frame.scene.render_rgb(), cv2.COLOR_RGB2BGR)):
                raise OSError(f"could not write {out / file_name}")
            images.append({"id": image_id, "file_name": file_name, "width": width, "height": height,
                           "video_id": clip + 1, "frame_index": frame.index, "stamp_s": frame.stamp_s})
            annotations.extend(clip_annotations(frame, image_id, len(annotations) + 1, (clip + 1) * 1000))
            if progress:
                progress(1)
    doc = {"info": {"description": "robot_instseg synthetic tabletop clips", "seed": seed, "clips": clips,
                    "style": style},
           "videos": videos, "images": images, "annotations": annotations,
           "categories": [{"id": i + 1, "name": n, "supercategory": "object"} for i, n in enumerate(classes)]}
    path = out / "annotations.json"
    path.write_text(json.dumps(doc))
    return path
