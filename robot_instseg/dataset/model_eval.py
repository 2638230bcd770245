"""A model scored on a COCO dataset: every image through the node's per-frame pipeline, then
COCOeval segm AP and boundary F1 (the trainer's validation metric and ``eval --model``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator


def evaluate_model(segmenter, coco_file: Path, images_dir: Path, progress: bool = False,
                   masks: str = "visible") -> dict:
    """Segment every image of a COCO file with ``segmenter`` and score it (COCOeval segm + boundary F1
    at 2 px and the DAVIS tolerance); the trainer's validation metric, as a function."""
    from robot_instseg.dataset.coco_check import load_checked_coco
    from robot_instseg.dataset.evaluate import davis_tolerance, evaluate_detections

    gt = load_checked_coco(coco_file)
    detections = segment_coco_images(segmenter, gt, images_dir, progress, masks)
    first = gt.loadImgs(sorted(gt.getImgIds())[:1])
    tolerances = (2.0, davis_tolerance((first[0]["height"], first[0]["width"]))) if first else (2.0,)
    metrics = evaluate_detections(gt, detections, segmenter.class_names, tolerances)
    return {**metrics, "images": len(detections), "masks": masks}


def segment_coco_images(segmenter, gt, images_dir: Path, progress: bool = False, masks: str = "visible",
                        ray=None, model=None) -> dict:
    """image id -> Detections (``masks``: "visible" as the node publishes, or "raw") for every image
    of a COCO ground truth; ``ray`` (RayOptions): the images on Ray workers that load ``model`` (ModelSpec)."""
    if ray is not None:
        return {image_id: output.detections(masks)
                for image_id, output in _ray_segmented(gt, images_dir, progress, ray, model)}
    return {image_id: output.detections(masks)
            for image_id, output in segmented_coco_images(segmenter, gt, images_dir, progress)}


def _ray_segmented(gt, images_dir: Path, progress: bool, ray, model) -> Iterator[tuple[int, Any]]:
    """(image id, FrameOutput) as ``segmented_coco_images`` gives them, segmented by Ray workers in runs of images."""
    from robot_instseg.offline.jobs import SegmentJob
    from robot_instseg.offline.unit_runner import items_only, unit_stream
    from robot_instseg.offline.work_units import image_units, units_of_at_most

    infos = gt.loadImgs(sorted(gt.getImgIds()))
    paths = [str(Path(images_dir) / info["file_name"]) for info in infos]
    units = image_units(paths, units_of_at_most(32, len(paths), ray.workers))
    with unit_stream(SegmentJob(model), units, ray, len(paths), not progress) as (stream, bar):
        for info, done in zip(infos, items_only(stream, bar)):
            if done.output is None:
                raise FileNotFoundError(f"{Path(images_dir) / info['file_name']}: cannot read the image")
            yield int(info["id"]), done.output


def segmented_coco_images(segmenter, gt, images_dir: Path, progress: bool = False) -> Iterator[tuple[int, Any]]:
    """(image id, FrameOutput) for every image of a COCO ground truth, in id order, as the node segments it."""
    from tqdm import tqdm

    from robot_instseg.engine.frame_pipeline import segment_frame
    from robot_instseg.io.frame_sources import read_rgb

    for info in tqdm(gt.loadImgs(sorted(gt.getImgIds())), desc="segmenting", unit="img", disable=not progress,
                     file=sys.stderr):
        image = read_rgb(Path(images_dir) / info["file_name"])
        if image is None:
            raise FileNotFoundError(f"{Path(images_dir) / info['file_name']}: cannot read the image")
        yield int(info["id"]), segment_frame(segmenter, image, "rgb")
