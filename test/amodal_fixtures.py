"""What tests of the amodal head share: a real model with the head (the bundled network, read back from its
ONNX, with the head grown as ``train --init ... --amodal`` grows it: it starts as the visible coefficients, so
its whole masks are the visible masks decoded in the grown window; real instances, no training), and a clutter
scene's truth as published instances with whole masks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from robot_instseg.engine.types import Detections
from robot_instseg.synthetic.scenes import generate_scene, object_annotations, scene_seed

BUNDLED = Path(__file__).resolve().parents[1] / "models" / "instseg_tabletop.onnx"


def grown_bundled_model(out: Path, publish: Optional[float] = None) -> Path:
    """Write the bundled model with a grown amodal head to ``out`` (an .onnx) and return it; ``publish``: its
    whole masks published at that probability (``amodal_mask_threshold``), None: no such metadata (an export of
    before it, one threshold for the whole masks and the order)."""
    import dataclasses

    import onnx

    from robot_instseg.train.export import export_onnx
    from robot_instseg.train.from_onnx import compactseg_from_onnx
    from robot_instseg.train.model import CompactSeg

    plain, names = compactseg_from_onnx(BUNDLED)
    grown = CompactSeg(dataclasses.replace(plain.config, amodal=True))
    grown.load_state_dict(plain.state_dict(), strict=False)
    for head in grown.heads:
        head.start_amodal_from_visible()
    extra = {"amodal_mask_threshold": str(publish)} if publish is not None else None
    path = export_onnx(grown.eval(), names, out, extra_metadata=extra)
    if publish is None:
        proto = onnx.load(str(path))
        kept = [(p.key, p.value) for p in proto.metadata_props if p.key != "amodal_mask_threshold"]
        del proto.metadata_props[:]
        for key, value in kept:
            proto.metadata_props.add(key=key, value=value)
        onnx.save(proto, str(path))
    return path


def scene_with_whole_masks(seed: int, grow_px: int = 0) -> tuple[Detections, list[dict]]:
    """Detections holding a clutter scene's true visible masks and whole masks (grown by ``grow_px``, as a
    decoder that bleeds past the outline), and the scene's annotations."""
    scene = generate_scene(scene_seed(seed, 0), 240, 320, min_visible=0.1)
    visible, amodal = scene.visible_masks(), scene.amodal_masks()
    detections = Detections.from_full_masks(np.stack(visible), [0.9] * len(visible), [0] * len(visible))
    boxes, crops = [], []
    for whole in amodal:
        if grow_px:
            whole = cv2.dilate(whole.astype(np.uint8), np.ones((2 * grow_px + 1,) * 2, np.uint8)).astype(bool)
        ys, xs = np.nonzero(whole)
        box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        boxes.append(box)
        crops.append(whole[box[1]:box[3], box[0]:box[2]])
    detections.amodal_boxes, detections.amodal_masks = np.asarray(boxes, np.int32), crops
    return detections, [ann for _, ann in object_annotations(scene, 1, 1)]
