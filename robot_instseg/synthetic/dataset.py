"""A synthetic scene set written as a COCO dataset: images, exact visible masks (RLE) and, optionally,
depth PNGs with the camera's intrinsics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional, Sequence

import cv2

from robot_instseg.synthetic.scenes import (
    CLASSES,
    MIN_VISIBLE_FRACTION,
    Scene,
    generate_scene,
    scene_annotations,
    scene_seed,
)


def write_dataset(out: Path, count: int, seed: int, height: int = 480, width: int = 640,
                  classes: Sequence[str] = CLASSES, progress: Optional[Callable[[int], object]] = None,
                  depth: bool = False, style: str = "default", min_visible: float = MIN_VISIBLE_FRACTION) -> Path:
    """Write ``out/images/*.png`` and ``out/annotations.json`` (COCO instances, RLE masks).

    ``depth``: also ``out/depth/*.png``, the sensor's depth (16UC1 millimetres, 0 = no reading,
    artefacts included) beside each image, ``out/depth_truth/*.png`` the perfect depth, and in each
    image entry ``depth_file``, ``depth_truth_file`` and ``intrinsics`` (fx, fy, cx, cy in pixels).
    ``style``: the look (``synthetic.style``): default, randomised or heldout. ``min_visible``: the
    fraction of itself every object keeps visible (``generate_scene``).
    """
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images: list[dict] = []
    annotations: list[dict] = []
    for index in range(count):
        scene = generate_scene(scene_seed(seed, index), height, width, style=style, min_visible=min_visible)
        file_name = f"images/{index:06d}.png"
        rgb = scene.render_rgb()
        if not cv2.imwrite(str(out / file_name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {out / file_name}")
        entry = {"id": index + 1, "file_name": file_name, "width": width, "height": height}
        if depth:
            entry.update(_write_depth(out, index, scene))
        images.append(entry)
        annotations.extend(scene_annotations(scene, index + 1, len(annotations) + 1))
        if progress:
            progress(1)
    doc = {"info": {"description": "robot_instseg synthetic tabletop scenes", "seed": seed, "count": count,
                    "style": style, "min_visible": min_visible},
           "images": images, "annotations": annotations,
           "categories": [{"id": i + 1, "name": n, "supercategory": "object"} for i, n in enumerate(classes)]}
    path = out / "annotations.json"
    path.write_text(json.dumps(doc))
    return path


def _write_depth(out: Path, index: int, scene: Scene) -> dict:
    """The depth PNGs of one scene and the image entry's keys that name them."""
    from robot_instseg.synthetic.depth import depth_png, render_depth, sensor_depth

    truth = render_depth(scene)
    names = {"depth_file": f"depth/{index:06d}.png", "depth_truth_file": f"depth_truth/{index:06d}.png"}
    for key, metres in (("depth_file", sensor_depth(truth, scene.seed)), ("depth_truth_file", truth.depth)):
        path = out / names[key]
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), depth_png(metres)):
            raise OSError(f"could not write {path}")
    k = truth.intrinsics
    return {**names, "intrinsics": {"fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy}}
