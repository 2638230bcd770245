"""How well per-instance 3D matches the truth, on synthetic scenes with rendered depth.

For each scene: the image, its ground-truth depth and (optionally) the sensor's depth with
artefacts. Masks are the ground-truth visible masks, or the model's visible masks matched
one-to-one to the ground truth (mask IoU >= ``MATCH_IOU``, best score first). Reported:
the centroid error (ours, and the naive mean of all masked depth beside it), and for the
elongated classes the angle between the oriented box's long axis and the long axis of the
object's true visible surface.

Box size: each oriented box's three sides against those of the same box fitted to the object's whole true
surface (hidden parts included, clean depth), as the norm of the side differences. Where the masks carry
whole (amodal) masks (the ground truth's, or a model with the amodal head) it is reported twice: the box of
the visible surface, and the box over the whole extent (``geometry.amodal_extent``); and again for the
objects at least ``OCCLUDED_RATE`` hidden, which the whole extent is for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from robot_instseg.dataset.amodal_eval import OrderCounts
from robot_instseg.dataset.evaluate import greedy_matches, mask_iou
from robot_instseg.engine.occlusion import occlusion_order
from robot_instseg.engine.types import Detections
from robot_instseg.geometry.amodal_extent import with_whole_extent
from robot_instseg.geometry.depth_order import depth_occlusion
from robot_instseg.geometry.fusion import back_project, fuse, naive_centroid, oriented_box
from robot_instseg.synthetic.depth import render_depth, sensor_depth, visible_surface_points
from robot_instseg.synthetic.occlusion import occlusions
from robot_instseg.synthetic.scenes import CLASSES, generate_scene, scene_seed

MATCH_IOU = 0.5
ELONGATED = ("tool", "bottle")
OCCLUDED_RATE = 0.1  # of an object's whole silhouette hidden: it counts among the occluded ones


@dataclass
class Depth3DErrors:
    """Per matched instance: centroid errors (mm), distances (m), and long-axis angles (degrees)."""

    ours_mm: list[float] = field(default_factory=list)
    mask_only_mm: list[float] = field(default_factory=list)  # ours without completing the mask from depth
    naive_mm: list[float] = field(default_factory=list)
    distance_m: list[float] = field(default_factory=list)
    axis_deg: list[float] = field(default_factory=list)
    gt_instances: int = 0
    matched: int = 0
    without_3d: int = 0
    fusion_ms: list[float] = field(default_factory=list)
    box_mm: list[float] = field(default_factory=list)  # box-size error of the visible surface's box
    box_whole_mm: list[float] = field(default_factory=list)  # ... of the box over the whole extent (amodal)
    long_side_mm: list[float] = field(default_factory=list)  # signed: ours - truth, the visible surface's box
    long_side_whole_mm: list[float] = field(default_factory=list)
    occluded: list[bool] = field(default_factory=list)  # per box_mm entry: OCCLUDED_RATE or more hidden
    order_depth: OrderCounts = field(default_factory=OrderCounts)  # occlusion order read from depth
    order_whole: OrderCounts = field(default_factory=OrderCounts)  # ... from whole masks (none: no pairs)

    def summary(self) -> dict:
        """Medians and 95th percentiles, counts, and the share of long axes within 10 degrees."""
        def stats(values: list[float]) -> dict:
            if not values:
                return {"n": 0}
            return {"n": len(values), "median": float(np.median(values)), "p95": float(np.percentile(values, 95)),
                    "mean": float(np.mean(values))}

        axis = np.asarray(self.axis_deg)
        return {"gt_instances": self.gt_instances, "matched": self.matched, "without_3d": self.without_3d,
                "centroid_error_mm": stats(self.ours_mm), "mask_only_centroid_error_mm": stats(self.mask_only_mm),
                "naive_centroid_error_mm": stats(self.naive_mm),
                "distance_m": {"min": min(self.distance_m, default=0.0), "max": max(self.distance_m, default=0.0)},
                "long_axis_deg": stats(self.axis_deg),
                "long_axis_within_10deg": float((axis <= 10.0).mean()) if len(axis) else 0.0,
                "fusion_ms": stats(self.fusion_ms), "box_size": self._box_summary(stats),
                "occlusion_order": {"depth": self.order_depth.summary(), "whole_masks": self.order_whole.summary()}}

    def _box_summary(self, stats: Callable[[list[float]], dict]) -> dict:
        """Box-size errors (mm) of all matched objects and of the occluded ones, with and without the whole
        extent (``whole`` entries: none when no whole masks were given)."""
        occluded = np.asarray(self.occluded, bool)
        out = {}
        for name, subset in (("all", np.ones(len(occluded), bool)), ("occluded", occluded)):
            out[name] = {key: stats(np.asarray(values)[subset].tolist() if len(values) == len(occluded) else [])
                         for key, values in (("visible_mm", self.box_mm), ("whole_mm", self.box_whole_mm),
                                             ("long_side_visible_mm", self.long_side_mm),
                                             ("long_side_whole_mm", self.long_side_whole_mm))}
        return out


def _match(detections: Detections, gt_masks: list[np.ndarray]) -> list[tuple[int, int]]:
    """(detection index, ground-truth index) pairs, greedy by score, mask IoU >= MATCH_IOU."""
    ious = np.array([[mask_iou(detections.full_mask(i), gt) for gt in gt_masks] for i in range(len(detections))])
    return greedy_matches(ious.reshape(len(detections), len(gt_masks)), detections.scores, MATCH_IOU)


def _true_box_sizes(scene, truth) -> list[np.ndarray]:
    """Per object, the sides (m) of the oriented box of its whole true surface (clean depth, hidden parts
    included), fitted as ours are."""
    sizes = []
    for surface in truth.surfaces:
        vs, us = np.nonzero(np.isfinite(surface))
        points = back_project(us, vs, surface[vs, us], truth.intrinsics)
        sizes.append(oriented_box(points.T)[2] if len(points) >= 3 else np.full(3, np.nan))
    return sizes


def _with_true_whole_masks(detections: Detections, amodal: list[np.ndarray]) -> Detections:
    """The ground truth's detections with each object's whole silhouette (``amodal``) as its whole mask."""
    whole = Detections.from_full_masks(np.array(amodal), detections.scores, detections.class_ids)
    detections.amodal_boxes, detections.amodal_masks = whole.mask_boxes, whole.masks
    return detections


def _long_axis(points: np.ndarray) -> np.ndarray:
    centred = points - points.mean(axis=0)
    return np.linalg.eigh(centred.T @ centred)[1][:, -1]


def evaluate_depth_fusion(count: int, seed: int = 0, segmenter=None, artefacts: bool = True,
                          height: int = 480, width: int = 640, progress: Optional[Callable[[int], object]] = None,
                          complete: bool = True) -> Depth3DErrors:
    """Errors over ``count`` scenes: with the model's masks when a ``segmenter`` is given, else the true ones.
    ``complete``: fuse as the node does by default (masks completed from depth); the mask-only reading
    is measured beside it either way."""
    from robot_instseg.engine.frame_pipeline import segment_frame

    errors = Depth3DErrors()
    for index in range(count):
        scene = generate_scene(scene_seed(seed, index), height, width)
        truth = render_depth(scene)
        depth = sensor_depth(truth, scene.seed) if artefacts else truth.depth.astype(np.float32)
        amodal = scene.amodal_masks()  # each object's whole silhouette, rendered once per scene
        gt_masks = scene.visible_masks(amodal)
        gt_points = visible_surface_points(scene, truth)
        errors.gt_instances += len(gt_masks)
        if segmenter is None:
            detections = _with_true_whole_masks(Detections.from_full_masks(
                np.array(gt_masks), [1.0] * len(gt_masks), [o.class_id for o in scene.objects]), amodal)
            pairs = [(j, j) for j in range(len(gt_masks))]
        else:
            detections = segment_frame(segmenter, scene.render_rgb(), "rgb").visible
            pairs = _match(detections, gt_masks)
        started = time.perf_counter()
        fused = fuse(detections, depth, truth.intrinsics, complete=complete)
        errors.fusion_ms.append((time.perf_counter() - started) * 1e3)
        mask_only = fuse(detections, depth, truth.intrinsics, complete=False) if complete else fused
        whole = with_whole_extent(fused, detections, depth, truth.intrinsics) if detections.has_amodal else None
        true_sizes, hidden = _true_box_sizes(scene, truth), _hidden_shares(amodal, gt_masks)
        _add_orders(errors, detections, depth, pairs, amodal, gt_masks)
        errors.matched += len(pairs)
        for i, j in pairs:
            truth_centroid = gt_points[j].mean(axis=0)
            ours = fused.instances[i]
            if ours is None:
                errors.without_3d += 1
                continue
            errors.ours_mm.append(float(np.linalg.norm(ours.centroid - truth_centroid)) * 1e3)
            plain = mask_only.instances[i]
            if plain is not None:
                errors.mask_only_mm.append(float(np.linalg.norm(plain.centroid - truth_centroid)) * 1e3)
            errors.distance_m.append(float(np.linalg.norm(truth_centroid)))
            x0, y0 = (int(v) for v in detections.mask_boxes[i][:2])
            naive = naive_centroid(detections.masks[i], x0, y0, depth, truth.intrinsics)
            if naive is not None:
                errors.naive_mm.append(float(np.linalg.norm(naive - truth_centroid)) * 1e3)
            _add_box_errors(errors, ours, whole.instances[i] if whole is not None else None, true_sizes[j],
                            hidden[j])
            if CLASSES[scene.objects[j].class_id] in ELONGATED:
                cos = abs(float(np.dot(ours.box_axes[:, 0], _long_axis(gt_points[j]))))
                errors.axis_deg.append(float(np.degrees(np.arccos(min(cos, 1.0)))))
        if progress:
            progress(1)
    return errors


def _add_orders(errors: Depth3DErrors, detections: Detections, depth: np.ndarray, pairs: list[tuple[int, int]],
                amodal: list[np.ndarray], gt_masks: list[np.ndarray]) -> None:
    """Score one scene's occlusion order from depth and, where whole masks exist, from them."""
    scene_pairs, areas = occlusions(amodal, gt_masks), {i: int(m.sum()) for i, m in enumerate(amodal)}
    match = {j: i for i, j in pairs}
    errors.order_depth.add(depth_occlusion(detections, depth), match, scene_pairs, areas)
    if detections.has_amodal:
        errors.order_whole.add(occlusion_order(detections).occluded_by, match, scene_pairs, areas)


def _hidden_shares(amodal: list[np.ndarray], visible: list[np.ndarray]) -> list[float]:
    """Per object, the share of its whole silhouette that is hidden."""
    return [1.0 - int(v.sum()) / max(int(w.sum()), 1) for v, w in zip(visible, amodal)]


def _add_box_errors(errors: Depth3DErrors, ours, whole, true_size: np.ndarray, hidden: float) -> None:
    """One matched object's box-size errors (mm): the visible surface's box and, given, the whole extent's."""
    if not np.isfinite(true_size).all():
        return
    errors.box_mm.append(float(np.linalg.norm(ours.box_size - true_size)) * 1e3)
    errors.long_side_mm.append(float(ours.box_size[0] - true_size[0]) * 1e3)
    errors.occluded.append(hidden >= OCCLUDED_RATE)
    if whole is not None:
        errors.box_whole_mm.append(float(np.linalg.norm(whole.box_size - true_size)) * 1e3)
        errors.long_side_whole_mm.append(float(whole.box_size[0] - true_size[0]) * 1e3)
