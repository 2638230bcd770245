"""Tracking quality on clips with ground-truth object ids: HOTA, IDF1, MOTA and ID switches, computed
by TrackEval's metric classes on mask-IoU similarities, for our tracker and (when supervision is
installed, ``make bench-deps``) the box-IoU ByteTrack baseline fed the same detections.

``keep_every`` = 2 evaluates on every second frame only, as a node that falls behind sees them.

A tracker here is ``make(fps)`` -> ``update(published, stamp_s, weak)``: the frame's published
detections, its camera time, and its detections under the score threshold (ByteTrack's low-score
boxes, empty unless the segmenter decoded them), which may keep tracks alive but are never scored.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from robot_instseg.engine.types import Detections
from robot_instseg.tracking.masks import box_iou
from robot_instseg.tracking.tracker import Tracker, TrackerConfig


def load_clips(gt) -> dict[int, list[dict]]:
    """video id -> its image entries in frame order (a COCO-video file: images carry video_id, frame_index)."""
    clips: dict[int, list[dict]] = {}
    for info in gt.loadImgs(sorted(gt.getImgIds())):
        if "video_id" not in info:
            raise ValueError(f"image {info['id']} has no video_id: not a sequence dataset (robot-instseg scenes "
                             "--sequence writes one)")
        clips.setdefault(int(info["video_id"]), []).append(info)
    for frames in clips.values():
        frames.sort(key=lambda i: i["frame_index"])
    return clips


def segment_clips(segmenter, gt, images_dir: Path,
                  progress: bool = False) -> tuple[dict[int, Detections], dict[int, Detections]]:
    """(image id -> visible Detections as the node publishes them, image id -> the weak detections the
    segmenter decoded under its score threshold for the tracker) for every image of the clips."""
    from robot_instseg.dataset.model_eval import segmented_coco_images

    published, weak = {}, {}
    for image_id, output in segmented_coco_images(segmenter, gt, images_dir, progress):
        published[image_id], weak[image_id] = output.visible, output.weak
    return published, weak


TrackUpdate = Callable[[Detections, float, Detections], np.ndarray]


def ours(fps: float, config: TrackerConfig = TrackerConfig()) -> TrackUpdate:
    """Our tracker, as the node runs it (camera time from the stamps, the weak detections too)."""
    tracker = Tracker(config)
    return lambda detections, stamp_s, weak: tracker.update(detections, stamp_s, weak=weak)


def ours_at(high_score: float) -> Callable[[float], TrackUpdate]:
    """Our tracker starting tracks from a fixed score (``track_high_score``, ``track_scene_share`` 0): the trade
    of ids against ID switches that the scene-following start score is measured against in the README."""
    config = dataclasses.replace(TrackerConfig(), high_score=high_score, scene_share=0.0)
    return lambda fps: ours(fps, config)


def bytetrack(fps: float) -> TrackUpdate:
    """supervision's ByteTrack (boxes only) on the same detections, the weak ones included (its own
    low-score stage); ImportError without supervision."""
    import supervision as sv

    tracker = sv.ByteTrack(frame_rate=int(round(fps)))

    def update(detections: Detections, stamp_s: float, weak: Detections) -> np.ndarray:
        ids = np.zeros(len(detections), np.int64)
        seen = Detections.concatenate(detections, weak)
        if not len(seen):
            tracker.update_with_detections(sv.Detections.empty())
            return ids
        tracked = tracker.update_with_detections(sv.Detections(
            xyxy=seen.boxes.astype(np.float32), confidence=seen.scores, class_id=seen.class_ids.astype(int)))
        tracker_ids = tracked.tracker_id if tracked.tracker_id is not None else np.zeros(len(tracked), int)
        for box, track_id in zip(tracked.xyxy, tracker_ids):  # map back by the (unchanged) box
            same = np.nonzero(np.all(np.abs(detections.boxes - box) < 1e-3, axis=1))[0]
            if len(same):
                ids[same[0]] = int(track_id)
        return ids

    return update


def sequence_data(frames: list[tuple[list[int], list[np.ndarray], list[int], list[np.ndarray]]]) -> dict:
    """TrackEval's per-sequence input from, per timestep, (true ids, true masks, track ids, tracked masks):
    ids remapped to 0.., and the mask IoU of every (true, tracked) pair as the similarity."""
    gt_map: dict[int, int] = {}
    tr_map: dict[int, int] = {}
    data: dict[str, Any] = {"gt_ids": [], "tracker_ids": [], "similarity_scores": [], "num_timesteps": len(frames)}
    n_gt = n_tr = 0
    for gt_ids, gt_masks, track_ids, masks in frames:
        data["gt_ids"].append(np.array([gt_map.setdefault(int(i), len(gt_map)) for i in gt_ids], int))
        data["tracker_ids"].append(np.array([tr_map.setdefault(int(i), len(tr_map)) for i in track_ids], int))
        sim = np.zeros((len(gt_masks), len(masks)))
        for a, g in enumerate(gt_masks):
            for b, m in enumerate(masks):
                union = np.count_nonzero(g | m)
                sim[a, b] = np.count_nonzero(g & m) / union if union else 0.0
        data["similarity_scores"].append(sim)
        n_gt += len(gt_masks)
        n_tr += len(masks)
    data.update(num_gt_dets=n_gt, num_tracker_dets=n_tr, num_gt_ids=len(gt_map), num_tracker_ids=len(tr_map))
    return data


def track_metrics(sequences: dict[str, dict]) -> dict:
    """HOTA, DetA, AssA (HOTA), IDF1 (Identity), MOTA and ID switches (CLEAR) over ``sequences`` (name ->
    sequence_data), by TrackEval."""
    from trackeval.metrics import CLEAR, HOTA, Identity

    quiet = {"PRINT_CONFIG": False}
    combined = {}
    for metric in (HOTA(quiet), Identity(quiet), CLEAR(quiet)):
        combined[type(metric).__name__] = metric.combine_sequences(
            {name: metric.eval_sequence(data) for name, data in sequences.items()})
    return {"HOTA": float(np.mean(combined["HOTA"]["HOTA"])), "DetA": float(np.mean(combined["HOTA"]["DetA"])),
            "AssA": float(np.mean(combined["HOTA"]["AssA"])), "IDF1": float(combined["Identity"]["IDF1"]),
            "MOTA": float(combined["CLEAR"]["MOTA"]), "IDSW": int(combined["CLEAR"]["IDSW"])}


def _coco_frames(gt, frames: list[dict], detections: dict[int, Detections], ids: list[np.ndarray]) -> list[tuple]:
    """sequence_data's input for COCO-video images and the tracked detections of each."""
    from pycocotools import mask as mask_utils

    out = []
    for info, frame_ids in zip(frames, ids):
        anns = gt.loadAnns(gt.getAnnIds(imgIds=[info["id"]]))
        det = detections[int(info["id"])]
        tracked = [i for i in range(len(det)) if frame_ids[i] > 0 and det.alternative_of[i] < 0]
        out.append(([int(a["track_id"]) for a in anns], [mask_utils.decode(gt.annToRLE(a)).astype(bool) for a in anns],
                    [int(frame_ids[i]) for i in tracked], [det.full_mask(i) for i in tracked]))
    return out


PERSISTING_IOU = 0.7  # box IoU with an instance of the previous frame: the same object, visibly still there


def persisting_with_id(previous: Detections, current: Detections, ids: np.ndarray) -> tuple[int, int]:
    """(instances of ``current`` that persist from ``previous``, those of them with a track id): the track
    coverage a consumer sees. Persisting: box IoU above PERSISTING_IOU with an instance of the previous frame;
    alternative readings (same_object_as) are left out on both sides, as the tracker gives them their
    object's id."""
    now = current.alternative_of < 0
    return persisting_boxes_with_id(previous.boxes[previous.alternative_of < 0], current.boxes[now],
                                    np.asarray(ids)[now])


def persisting_boxes_with_id(before: np.ndarray, now: np.ndarray, ids: np.ndarray) -> tuple[int, int]:
    """``persisting_with_id`` on xyxy boxes of one object each (alternative readings already left out) and the
    track ids of ``now``: shared by eval --track and the live Watcher of bench --ros."""
    if not len(before) or not len(now):
        return 0, 0
    persisting = box_iou(now, before).max(axis=1) > PERSISTING_IOU
    return int(np.count_nonzero(persisting)), int(np.count_nonzero(ids[persisting]))


def evaluate_tracking(gt, detections: dict[int, Detections], trackers: dict[str, Callable], keep_every: int = 1,
                      fps: float = 15.0, weak: Optional[dict[int, Detections]] = None) -> dict:
    """Per tracker: HOTA, DetA, AssA, IDF1, MOTA, ID switches over every clip, and its cost per frame.

    ``detections`` are scored; ``weak`` (image id -> detections under the score threshold) only reach
    the trackers."""
    weak = weak or {}
    clips = load_clips(gt)
    report: dict = {"clips": len(clips), "frames": 0, "keep_every": keep_every, "trackers": {}}
    for name, make in trackers.items():
        sequences: dict[str, dict] = {}
        cost_ms: list[float] = []
        frames_seen, persisting, with_id = 0, 0, 0
        for video_id, frames in clips.items():
            frames = frames[::keep_every]
            update = make(fps / keep_every)
            ids = []
            for info in frames:
                det = detections[int(info["id"])]
                extra = weak.get(int(info["id"])) or Detections.empty(det.image_shape)
                started = time.perf_counter()
                ids.append(update(det, float(info.get("stamp_s", info["frame_index"] / fps)), extra))
                cost_ms.append((time.perf_counter() - started) * 1e3)
                if len(ids) > 1:
                    seen, named = persisting_with_id(detections[int(frames[len(ids) - 2]["id"])], det, ids[-1])
                    persisting, with_id = persisting + seen, with_id + named
            frames_seen += len(frames)
            sequences[str(video_id)] = sequence_data(_coco_frames(gt, frames, detections, ids))
        report["frames"] = frames_seen
        report["trackers"][name] = {**track_metrics(sequences),
                                    "ms_per_frame": float(np.median(cost_ms)) if cost_ms else 0.0,
                                    "track_coverage": with_id / persisting if persisting else 0.0,
                                    "persisting_instances": persisting}
    return report


def default_trackers(baseline: bool = True) -> dict[str, Callable]:
    """Ours, and ByteTrack when supervision is importable (else it is left out and said so by the caller)."""
    trackers: dict[str, Callable] = {"ours": ours}
    if baseline:
        try:
            import supervision  # noqa: F401
            trackers["bytetrack"] = bytetrack
        except ImportError:
            pass
    return trackers


def tracked_results(gt, results: list[dict]) -> tuple[dict[int, Detections], Callable]:
    """A results file that carries ``track_id`` (``run`` writes it) as per-image Detections and a "tracker"
    that hands back the recorded ids, so evaluate_tracking scores them like any tracker."""
    from pycocotools import mask as mask_utils

    by_image: dict[int, list[dict]] = {}
    for entry in results:
        if "track_id" not in entry:
            raise ValueError("the results carry no track_id: write them with robot-instseg run on a bag or video")
        by_image.setdefault(int(entry["image_id"]), []).append(entry)
    detections: dict[int, Detections] = {}
    recorded: dict[int, np.ndarray] = {}
    for info in gt.loadImgs(sorted(gt.getImgIds())):
        entries = by_image.get(int(info["id"]), [])
        masks = np.array([mask_utils.decode(e["segmentation"]).astype(bool) for e in entries]).reshape(
            -1, info["height"], info["width"])
        det = Detections.from_full_masks(masks, [float(e.get("score", 1.0)) for e in entries],
                                         [int(e["category_id"]) - 1 for e in entries])
        detections[int(info["id"])] = det
        recorded[id(det)] = np.array([int(e["track_id"]) for e in entries], np.int64)

    def given(fps: float) -> TrackUpdate:
        return lambda det, stamp_s, weak: recorded[id(det)]

    return detections, given
