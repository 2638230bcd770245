"""Sequences with ground-truth ids, scored by TrackEval through our glue: perfect detections tracked by
ours give near-perfect identity scores; a tracker that swaps ids is caught."""

from __future__ import annotations

import json

import numpy as np
from pycocotools.coco import COCO

from robot_instseg.dataset.track_eval import evaluate_tracking, load_clips, persisting_with_id
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

        def update(det: Detections, stamp: float, weak: Detections) -> np.ndarray:
            ids = track(det, stamp, weak)
            calls[0] += 1
            return ids[::-1].copy() if calls[0] % 10 == 0 else ids  # every tenth frame the ids are reversed

        return update

    report = evaluate_tracking(gt, detections, {"ours": ours, "swapping": swapping})
    good, bad = report["trackers"]["ours"], report["trackers"]["swapping"]
    assert good["IDF1"] >= 0.95 and good["IDSW"] <= 2 and good["HOTA"] >= 0.9, good  # small, crowded frames
    assert bad["IDSW"] > 0 and bad["IDF1"] < good["IDF1"], bad
    halved = evaluate_tracking(gt, detections, {"ours": ours}, keep_every=2)["trackers"]["ours"]
    assert halved["IDF1"] >= good["IDF1"] - 0.05


def test_eval_track_scores_a_results_file_with_track_ids(tmp_path) -> None:
    """`eval --track --pred`: the dataset's own masks and ids as results score 1; ids scrambled per frame do not."""
    import subprocess
    import sys

    path = write_sequences(tmp_path, 1, seed=4, frames=20, objects=6, height=240, width=320)
    doc = json.loads(path.read_text())
    perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": a["segmentation"],
                "score": 0.9, "track_id": a["track_id"]} for a in doc["annotations"]]
    scrambled = [dict(e, track_id=(e["track_id"] * 7 + e["image_id"]) % 11 + 1) for e in perfect]
    scores = {}
    for name, results in (("perfect", perfect), ("scrambled", scrambled)):
        (tmp_path / f"{name}.json").write_text(json.dumps(results))
        done = subprocess.run([sys.executable, "-m", "robot_instseg.cli", "eval", "--track", "--gt", str(path),
                               "--pred", str(tmp_path / f"{name}.json"), "--keep-every", "1", "--json"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        scores[name] = json.loads(done.stdout)["runs"][0]["trackers"]["pred"]
    assert scores["perfect"]["IDF1"] == 1.0 and scores["perfect"]["IDSW"] == 0 and scores["perfect"]["HOTA"] > 0.99
    assert scores["scrambled"]["IDF1"] < 0.5 and scores["scrambled"]["IDSW"] > 10
    no_ids = tmp_path / "no_ids.json"
    no_ids.write_text(json.dumps([{k: v for k, v in e.items() if k != "track_id"} for e in perfect]))
    done = subprocess.run([sys.executable, "-m", "robot_instseg.cli", "eval", "--track", "--gt", str(path),
                           "--pred", str(no_ids)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no track_id" in done.stderr and "Traceback" not in done.stderr


def test_track_coverage_counts_persisting_instances_and_their_ids() -> None:
    def boxes(*xs: int) -> Detections:
        masks = np.zeros((len(xs), 100, 200), bool)
        for k, x in enumerate(xs):
            masks[k, 20:60, x:x + 30] = True
        return Detections.from_full_masks(masks, [0.9] * len(xs), [0] * len(xs))

    before, now = boxes(10, 100), boxes(11, 101, 160)  # two moved a pixel (box IoU > 0.7), one is new
    assert persisting_with_id(before, now, np.array([4, 0, 7])) == (2, 1)  # the second persists without an id
    assert persisting_with_id(before, now, np.array([4, 5, 0])) == (2, 2)  # the new one is not counted
    assert persisting_with_id(Detections.empty((100, 200)), now, np.array([1, 2, 3])) == (0, 0)
    now.alternative_of[1] = 0  # another reading of the first: its object's id, not counted on its own
    assert persisting_with_id(before, now, np.array([4, 4, 0])) == (1, 1)


def test_a_clip_in_the_held_out_look_keeps_its_objects_and_changes_its_pixels() -> None:
    default = list(generate_clip(5, frames=3, objects=4, height=120, width=160))
    heldout = list(generate_clip(5, frames=3, objects=4, height=120, width=160, style="heldout"))
    for a, b in zip(default, heldout):
        assert a.index == b.index and all(np.array_equal(m, n) for m, n in
                                          zip(a.scene.visible_masks(), b.scene.visible_masks()))
        assert np.abs(a.scene.render_rgb().astype(int) - b.scene.render_rgb().astype(int)).mean() > 20


def test_a_lower_track_high_score_gives_ids_to_an_object_the_model_is_less_sure_of() -> None:
    from robot_instseg.dataset.track_eval import ours, ours_at

    def frame(x: int, score: float) -> Detections:
        masks = np.zeros((1, 100, 200), bool)
        masks[0, 20:60, x:x + 30] = True
        return Detections.from_full_masks(masks, [score], [0])

    clip = [frame(10 + k, 0.35) for k in range(6)]  # published (>= 0.25), under the default 0.5
    default, lowered = ours(15.0), ours_at(0.3)(15.0)
    empty = Detections.empty((100, 200))
    assert [int(default(d, k / 15, empty)[0]) for k, d in enumerate(clip)] == [0] * 6
    ids = [int(lowered(d, k / 15, empty)[0]) for k, d in enumerate(clip)]
    assert ids[0] == 0 and len(set(ids[1:])) == 1 and ids[1] > 0  # confirmed at its 2nd match, one id after
