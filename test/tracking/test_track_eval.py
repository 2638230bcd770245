"""Sequences with ground-truth ids, scored by TrackEval through our glue: perfect detections tracked by
ours give near-perfect identity scores; a tracker that swaps ids is caught."""

from __future__ import annotations

import json

import numpy as np
from pycocotools.coco import COCO

from robot_instseg.dataset.track_eval import evaluate_tracking, load_clips
from robot_instseg.engine.types import Detections
from robot_instseg.synthetic.sequences import generate_clip, write_sequences


def _truth_detections(gt: COCO) -> dict[int, Detections]:
    """The dataset's own visible masks as detections (no model): what a perfect segmenter would give."""
    from pycocotools import mask as mask_utils

    out = {}
    for info in gt.loadImgs(sorted(gt.getImgIds())):
        anns = gt.loadAnns(gt.getAnnIds(imgIds=[info["id"]]))
        masks = np.array([mask_utils.decode(gt.annToRLE(a)).astype(bool) for a in anns]).reshape(
            -1, info["height"], info["width"])
        out[info["id"]] = Detections.from_full_masks(masks, [0.9] * len(anns), [a["category_id"] - 1 for a in anns])
    return out


def test_clips_have_persistent_ids_occlusions_exits_and_drops(tmp_path) -> None:
    frames = list(generate_clip(3, frames=90, objects=8, height=240, width=320))
    assert 80 <= len(frames) < 90  # a few dropped: their stamps are missing
    assert all(b.stamp_s > a.stamp_s for a, b in zip(frames, frames[1:]))
    visible = [[int(m.sum()) for m in f.scene.visible_masks()] for f in frames]
    assert any(0 < v < full for f in frames for v, full in zip(
        [int(m.sum()) for m in f.scene.visible_masks()], [int(o.silhouette((240, 320)).sum()) for o in f.scene.objects]))
    assert any(min(row) == 0 for row in visible)  # someone left the view (or was fully hidden) at some point

    path = write_sequences(tmp_path, 2, seed=5, frames=30, objects=8, height=240, width=320)
    doc = json.loads(path.read_text())
    gt = COCO(str(path))
    clips = load_clips(gt)
    assert sorted(clips) == [1, 2] and len(doc["videos"]) == 2
    tracks = {a["track_id"] for a in doc["annotations"]}
    assert len(tracks) >= 12 and all(1000 < t < 3000 for t in tracks)


def test_perfect_detections_tracked_by_ours_score_near_one_and_swapped_ids_are_caught(tmp_path) -> None:
    from robot_instseg.dataset.track_eval import ours

    path = write_sequences(tmp_path, 2, seed=8, frames=40, objects=8, height=240, width=320)
    gt = COCO(str(path))
    detections = _truth_detections(gt)

    def swapping(fps: float):
        track = ours(fps)
        calls = [0]

        def update(det: Detections, stamp: float) -> np.ndarray:
            ids = track(det, stamp)
            calls[0] += 1
            return ids[::-1].copy() if calls[0] % 10 == 0 else ids  # every tenth frame the ids are reversed

        return update

    report = evaluate_tracking(gt, detections, {"ours": ours, "swapping": swapping})
    good, bad = report["trackers"]["ours"], report["trackers"]["swapping"]
    assert good["IDF1"] >= 0.95 and good["IDSW"] <= 2 and good["HOTA"] >= 0.9, good  # small, crowded frames
    assert bad["IDSW"] > 0 and bad["IDF1"] < good["IDF1"], bad
    halved = evaluate_tracking(gt, detections, {"ours": ours}, keep_every=2)["trackers"]["ours"]
    assert halved["IDF1"] >= good["IDF1"] - 0.05
