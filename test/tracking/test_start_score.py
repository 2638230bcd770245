"""The start score follows how sure the model is of the scene (tracking.start_score), and the tracker
starts tracks from it."""

from __future__ import annotations

import numpy as np

from robot_instseg.engine.types import Detections
from robot_instseg.tracking.start_score import MIN_SCORES, StartScore
from robot_instseg.tracking.tracker import Tracker, TrackerConfig


def _feed(start: StartScore, scores: list[float], frames: int, t0: float = 0.0, share: float = 0.54) -> float:
    value = 0.0
    for k in range(frames):
        value = start.update(t0 + k * 0.1, np.array(scores), 0.5, 0.1, share, 10.0)
    return value


def test_a_known_scene_keeps_high_score_and_an_unsure_one_lowers_it_to_the_share_of_its_median() -> None:
    assert _feed(StartScore(), [0.95, 0.97, 0.99], 10) == 0.5  # 0.54 x 0.97 is over 0.5
    assert abs(_feed(StartScore(), [0.4, 0.5, 0.6], 10) - 0.54 * 0.5) < 1e-12
    assert _feed(StartScore(), [0.1, 0.12, 0.1], 10) == 0.1  # never under low_score
    assert _feed(StartScore(), [0.4, 0.5, 0.6], 10, share=0.0) == 0.5  # 0: always high_score


def test_too_few_scores_keep_high_score_and_old_frames_leave_the_window() -> None:
    start = StartScore()
    assert start.value is None
    assert _feed(start, [0.4], MIN_SCORES - 1) == 0.5
    assert _feed(start, [0.4], 1, t0=1.9) < 0.5  # the MIN_SCORES-th score moves it
    assert _feed(start, [0.95, 0.9], 5, t0=13.0) == 0.5  # the unsure frames are over 10 s old
    start.reset()
    assert _feed(start, [0.4], 3) == 0.5


def test_the_kept_median_is_numpy_s_over_the_window_every_frame() -> None:
    """The sorted window kept frame by frame gives np.median of the window's scores exactly, as frames of
    different sizes (some empty) enter and leave it; a NaN score is left out."""
    rng = np.random.default_rng(11)
    start, window, stamp = StartScore(), [], 0.0
    for frame in range(400):
        stamp += float(rng.choice([0.05, 0.1, 0.7]))
        scores = rng.random(int(rng.integers(0, 9))).astype(np.float32)
        if frame % 50 == 7:
            scores = np.append(scores, np.float32("nan"))
        window = [(t, s) for t, s in window if stamp - t <= 10.0] + [(stamp, scores[~np.isnan(scores)])]
        kept = np.concatenate([s for _, s in window]).astype(np.float64)
        value = start.update(stamp, scores, 2.0, -1.0, 1.0, 10.0)  # share 1 and wide bounds: the median itself
        if kept.size >= MIN_SCORES:
            assert value == float(np.median(kept)), frame
        else:
            assert value == 2.0


def _frame(scores: list[float], shift: int) -> Detections:
    masks = np.zeros((len(scores), 120, 400), bool)
    for k in range(len(scores)):
        masks[k, 30:80, 10 + 70 * k + shift:60 + 70 * k + shift] = True
    return Detections.from_full_masks(masks, scores, [0] * len(scores))


def test_the_tracker_names_objects_of_a_scene_the_model_is_unsure_of() -> None:
    scores = [0.35, 0.4, 0.42, 0.38, 0.45]  # all published (>= 0.25), all under track_high_score 0.5
    following, fixed = Tracker(), Tracker(TrackerConfig(scene_share=0.0))
    for k in range(8):
        frame = _frame(scores, k)
        ids, fixed_ids = following.update(frame, k / 15), fixed.update(_frame(scores, k), k / 15)
    assert not fixed_ids.any()
    assert (ids > 0).all() and len(set(ids.tolist())) == len(scores)
    assert abs(following.start_score.value - 0.54 * 0.4) < 1e-6  # float32 scores
