"""The association on crafted cases: crossing objects, full occlusion and return, class flicker,
dropped frames, weak detections, and ids that are never reused."""

from __future__ import annotations

import numpy as np

from robot_instseg.engine.types import Detections
from robot_instseg.tracking.masks import box_iou, crop_iou
from robot_instseg.tracking.tracker import Tracker, TrackerConfig

H, W = 240, 320


def _disc(cx: float, cy: float, r: float = 12) -> np.ndarray:
    """A filled disc mask of radius ``r`` at (cx, cy)."""
    yy, xx = np.mgrid[0:H, 0:W]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _frame(objects: list[tuple[float, float, int, float]], r: float = 12) -> Detections:
    """Detections of discs (cx, cy, class, score)."""
    if not objects:
        return Detections.empty((H, W))
    masks = np.stack([_disc(cx, cy, r) for cx, cy, _, _ in objects])
    return Detections.from_full_masks(masks, [s for *_, s in objects], [c for _, _, c, _ in objects])


def test_crop_iou_and_box_iou_agree_with_full_frames() -> None:
    a, b = _disc(50, 50, 10), _disc(58, 52, 10)
    d = Detections.from_full_masks(np.stack([a, b]), [1, 1], [0, 0])
    (ax, ay), (bx, by) = d.mask_boxes[0][:2], d.mask_boxes[1][:2]
    full = (a & b).sum() / (a | b).sum()
    assert abs(crop_iou(d.masks[0], int(ax), int(ay), d.masks[1], int(bx), int(by)) - full) < 1e-12
    assert crop_iou(d.masks[0], 0, 0, d.masks[1], 500, 500) == 0.0
    np.testing.assert_allclose(box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10], [20, 20, 30, 30]]), [[1 / 3, 0.0]])


def test_two_objects_of_one_class_crossing_keep_their_ids() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1))
    history = []
    for step in range(30):  # A moves right, B moves left on a row 10 px lower; they cross at step 15
        t = step / 30
        ids = tracker.update(_frame([(40 + 8 * step, 100, 0, 0.9), (280 - 8 * step, 110, 0, 0.9)]), t)
        history.append(tuple(ids))
    assert all(h == history[0] for h in history), history
    assert len(set(history[0])) == 2 and 0 not in history[0]


def test_full_occlusion_for_several_frames_then_return_keeps_the_id() -> None:
    tracker = Tracker(TrackerConfig(min_hits=2, max_lost_s=2.0))
    ids_before = None
    for step in range(10):  # moving right at 4 px per frame, 10 Hz
        ids_before = tracker.update(_frame([(60 + 4 * step, 120, 1, 0.9), (250, 60, 2, 0.9)]), step / 10)
    hidden = tracker.update(_frame([(250, 60, 2, 0.9)]), 1.0)  # the mover is hidden for 8 frames
    for step in range(11, 18):
        tracker.update(_frame([(250, 60, 2, 0.9)]), step / 10)
    back = tracker.update(_frame([(60 + 4 * 18, 120, 1, 0.9), (250, 60, 2, 0.9)]), 1.8)
    assert ids_before[0] > 0 and back[0] == ids_before[0] and back[1] == ids_before[1] == hidden[0]


def test_an_object_covered_from_one_side_then_uncovered_keeps_the_id() -> None:
    """The box shrinks as an occluder slides over the object; that is no motion to extrapolate."""
    tracker = Tracker(TrackerConfig(min_hits=2, max_lost_s=2.0))
    xx = np.mgrid[0:H, 0:W][1]
    disc = _disc(150, 120, 20)
    ids = [tracker.update(_frame([(150, 120, 1, 0.9)], r=20), step / 10)[0] for step in range(5)]
    for step in range(5, 10):  # an occluder comes in from the right, 7 px per frame, down to a 5 px sliver
        visible = disc & (xx < 170 - 7 * (step - 4))
        tracker.update(Detections.from_full_masks(visible[None], [0.9], [1]), step / 10)
    for step in range(10, 16):  # fully covered
        tracker.update(_frame([]), step / 10)
    back = [tracker.update(_frame([(150, 120, 1, 0.9)], r=20), step / 10)[0] for step in range(16, 19)]
    assert ids[-1] > 0 and back == [ids[-1]] * 3, (ids, back)


def test_a_class_flicker_keeps_the_track_and_a_lost_track_expires() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1, max_lost_s=0.5))
    first = tracker.update(_frame([(100, 100, 0, 0.9)]), 0.0)
    flicker = tracker.update(_frame([(101, 100, 3, 0.9)]), 0.1)  # the model calls it another class once
    again = tracker.update(_frame([(102, 100, 0, 0.9)]), 0.2)
    assert first[0] == flicker[0] == again[0] > 0
    tracker.update(_frame([]), 0.3)
    late = tracker.update(_frame([(102, 100, 0, 0.9)]), 1.5)  # gone for 1.3 s > max_lost_s: a new object
    assert late[0] > again[0]


def test_ids_are_never_reused_and_tentative_tracks_get_no_id() -> None:
    tracker = Tracker(TrackerConfig(min_hits=3))
    seen: set[int] = set()
    for k in range(5):  # five objects, each seen for 4 frames at a different place, one after another
        ids = [tracker.update(_frame([(40 + 50 * k, 80, 0, 0.9)]), 10 * k + f / 10)[0] for f in range(4)]
        assert ids[:2] == [0, 0] and ids[2] == ids[3] > 0  # confirmed at the third hit
        assert ids[2] not in seen
        seen.add(ids[2])
    tracker.reset()
    after = [tracker.update(_frame([(40, 80, 0, 0.9)]), 100.0 + f / 10)[0] for f in range(3)]
    assert after == [0, 0, max(seen) + 1]  # tentative again, then the next id: none is reused


def test_dropped_frames_only_lengthen_the_step() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1))
    # every third frame of a 15 Hz camera: a 50 px object moving 5 px per frame steps 15 px, then one
    # stamp gap of 0.6 s (8 frames dropped): the prediction covers the 45 px it moved meanwhile
    stamps = [s / 15 for s in range(0, 45, 3)] + [3.4, 3.6]
    ids = [tracker.update(_frame([(40 + 75 * t, 120, 0, 0.9)], r=25), t)[0] for t in stamps]
    assert len(set(ids)) == 1 and ids[0] > 0


def test_weak_detections_keep_a_track_alive_but_never_start_one() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1, high_score=0.5, low_score=0.1))
    first = tracker.update(_frame([(100, 100, 0, 0.8)]), 0.0)
    weak = tracker.update(_frame([(102, 100, 0, 0.3), (250, 200, 0, 0.3)]), 0.1)
    assert weak[0] == first[0] and weak[1] == 0
    assert tracker.update(_frame([(250, 200, 0, 0.3)]), 0.2)[0] == 0


def test_unpublished_weak_detections_bridge_a_low_frame_and_get_no_id_back() -> None:
    """ByteTrack's order: the caller publishes from 0.25 but also hands the tracker what it decoded down to
    0.1; an object that dips under 0.25 for a frame keeps its track, and only published ones get ids."""
    config = TrackerConfig(min_hits=1, high_score=0.5, low_score=0.1)
    bridged, filtered = Tracker(config), Tracker(config)
    empty = _frame([])
    first = bridged.update(_frame([(100, 100, 0, 0.8)]), 0.0)
    filtered.update(_frame([(100, 100, 0, 0.8)]), 0.0)
    for step in range(1, 4):  # three frames in which it scores 0.2: weak, not published
        ids = bridged.update(empty, step / 10, weak=_frame([(100 + 2 * step, 100, 0, 0.2)]))
        assert len(ids) == 0
        filtered.update(empty, step / 10)
        assert bridged.tracks[0].matched_last_frame and not filtered.tracks[0].matched_last_frame
        assert bridged.tracks[0].box[0] > filtered.tracks[0].box[0]  # it followed the weak detections
    strong_new = _frame([(300, 220, 0, 0.2)])
    assert len(bridged.update(empty, 0.4, weak=strong_new)) == 0 and len(bridged.tracks) == 1  # never starts one
    back = bridged.update(_frame([(110, 100, 0, 0.8)]), 0.5, weak=_frame([(300, 220, 0, 0.2)]))
    assert back.tolist() == first.tolist()  # kept alive through the dip, then matched as a live track
    assert bridged.kept_by_unpublished == 3 and filtered.kept_by_unpublished == 0  # the three dip frames
    centroids = bridged.update(_frame([(112, 100, 0, 0.8)]), 0.6, [None], weak=_frame([(200, 50, 1, 0.2)]))
    assert centroids.tolist() == first.tolist()


def test_an_alternative_reading_gets_the_id_of_its_stronger_instance() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1))
    d = _frame([(100, 100, 0, 0.9), (100, 100, 4, 0.6)])
    d.alternative_of = np.array([-1, 0])
    ids = tracker.update(d, 0.0)
    assert ids[0] > 0 and ids[1] == ids[0] and len(tracker.tracks) == 1


def test_3d_centroids_keep_an_occluder_from_taking_the_id_of_what_it_covers() -> None:
    """B stands at 1.0 m; A, at 0.5 m, jumps in front of it while B is hidden. In the image A's mask now sits
    exactly where B's was, so by masks alone A takes B's id; the 3D gate refuses that pair."""
    def run(with_3d: bool) -> tuple[int, int, int]:
        tracker = Tracker(TrackerConfig(min_hits=1))
        both = _frame([(100, 120, 0, 0.9), (220, 120, 0, 0.9)])
        depths = [np.array([0.0, 0.0, 0.5]), np.array([0.1, 0.0, 1.0])]
        first = tracker.update(both, 0.0, depths if with_3d else None)
        jumped = tracker.update(_frame([(220, 120, 0, 0.9)]), 0.1, [np.array([0.1, 0.0, 0.5])] if with_3d else None)
        return int(first[0]), int(first[1]), int(jumped[0])

    a, b, taken = run(with_3d=False)
    assert taken == b  # masks alone: a switch
    a, b, taken = run(with_3d=True)
    assert taken != b  # 3D: B's id is not given to A (it gets A's own id back or a new one)


def _leave_right_and_return(tracker: Tracker, back_at: tuple[float, float, int], gone_s: float) -> tuple[int, int]:
    """An object of class 2 slides out through the right border at y = 120 (10 Hz, 6 px per frame) while a
    class-0 object stays in view; ``gone_s`` later something (cx, cy, class) enters. (id of the leaver, id of
    what entered once confirmed)."""
    steps = [(260 + 6 * k, 120, 2, 0.9) for k in range(12)]  # cx 326 at the end: wholly out of the image
    leaver = 0
    for k, (cx, cy, c, s) in enumerate(steps):
        visible = [(cx, cy, c, s)] if cx - 12 < W else []
        ids = tracker.update(_frame(visible + [(80, 60, 0, 0.9)]), k / 10)
        if visible:
            leaver = int(ids[0]) or leaver
    start = len(steps) / 10 + gone_s
    cx, cy, c = back_at
    entered = [tracker.update(_frame([(cx - 3 * k, cy, c, 0.9), (80, 60, 0, 0.9)]), start + k / 10)[0]
               for k in range(3)]
    return leaver, int(entered[-1])


def test_an_object_that_leaves_through_a_border_gets_its_id_back_when_it_comes_back_there() -> None:
    tracker = Tracker(TrackerConfig(min_hits=2, max_lost_s=1.0, max_out_s=10.0))
    leaver, back = _leave_right_and_return(tracker, (W + 2, 128, 2), gone_s=5.0)  # 8 px lower
    assert leaver > 0 and back == leaver
    assert sorted(int(t.track_id) for t in tracker.tracks) == sorted({int(t.track_id) for t in tracker.tracks})


def test_re_entry_needs_the_same_border_class_place_and_time() -> None:
    config = TrackerConfig(min_hits=2, max_lost_s=1.0, max_out_s=10.0)
    for entering, gone_s in [((W + 2, 128, 4), 5.0),  # another class
                             ((-2 + 6, 128, 2), 5.0),  # through the left border
                             ((W + 2, 200, 2), 5.0),  # 80 px lower: several sizes away along the border
                             ((W + 2, 128, 2), 12.0)]:  # after max_out_s
        leaver, back = _leave_right_and_return(Tracker(config), entering, gone_s)
        assert back > leaver > 0, (entering, gone_s)
