"""Persistent track ids across frames, from masks, scores, classes and camera time.

Per frame (``update``), in the spirit of ByteTrack:

1. Every live track predicts where it is now: its box moved at the smoothed velocity of its centre
   for the time since it was last seen (camera time from the stamps, so frames the node drops only
   make the step longer), and its last mask moved with the box. The size is not extrapolated: a box
   that shrinks while an occluder covers its object would otherwise collapse before the object returns.
2. Confident detections (score >= the start score: ``high_score``, or lower in a scene the model is
   less sure of, ``tracking.start_score``) are matched to all tracks, lost ones
   included, on cost = 1 - mask IoU (+ ``class_change_cost`` across classes, so a class flicker
   keeps its track but a same-class candidate wins); a pair needs IoU >= ``min_iou``. A track
   lost for a while is also matched by box proximity (its predicted box, at the size the object had
   when last seen whole, grown by that size and its time lost), which is how an object that comes
   back after an occlusion gets its id back.
3. Weak detections (``low_score`` <= score < the start score) may only keep tracks seen in the
   previous frame alive (IoU >= ``min_iou_weak``): they never start a track. The caller may add
   detections it does not publish (``weak``: those under its score threshold, as ByteTrack uses the
   detector's low-score boxes); they only ever take part in this stage, and get no id back.
4. Unmatched confident detections start tentative tracks; a track is confirmed, and given the
   next id, after ``min_hits`` matches. Ids are never reused. A tentative track that misses a
   frame is dropped; a confirmed one is kept for ``max_lost_s`` of camera time.

An object that leaves the view comes back through the same border: a confirmed track last seen
touching a border is remembered for ``max_out_s`` (longer than ``max_lost_s``), and a new track that
is confirmed touching that border, of the same class, within ``reentry_offset`` of its sizes from where
the old one left (measured along the border), takes the old id back instead of a new one.

With 3D centroids (depth fused), a pair whose centroids are further apart than the track could
have moved (``max_speed_3d`` x the time since it was seen, at least ``min_gate_3d``) is never
matched: an occluder in front of an object it covers in the image is not that object.

Assignment is optimal per stage (scipy's linear_sum_assignment on the cost matrix, which ``pair_costs`` fills for
every pair in one compiled call).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from scipy.optimize import linear_sum_assignment

from robot_instseg.engine.types import Detections
from robot_instseg.tracking.pair_costs import FORBIDDEN, detection_table, packed_masks, pair_costs, track_row
from robot_instseg.tracking.start_score import StartScore


@dataclass(frozen=True)
class TrackerConfig:
    """Thresholds of the association (see the module docstring)."""

    high_score: float = 0.5  # may start a track (stage 2)
    low_score: float = 0.1  # below: ignored; between the two: keeps a live track alive (stage 3)
    min_iou: float = 0.2  # mask IoU for a match in stage 2
    min_iou_weak: float = 0.3  # ... and in stage 3
    class_change_cost: float = 0.3  # added to a match across classes
    min_hits: int = 2  # matches before a track is confirmed and gets an id
    max_lost_s: float = 2.0  # camera time a confirmed track survives unseen
    velocity_smoothing: float = 0.5  # weight of the newest velocity estimate
    extent_half_life_s: float = 1.0  # a track's remembered size follows a shrinking box this slowly
    max_prediction_s: float = 0.5  # a lost track's box stops moving after this long
    max_speed_3d: float = 1.0  # m/s an object may move between frames (3D gate, when centroids are given)
    min_gate_3d: float = 0.1  # m: the 3D gate is never narrower than this (depth noise, centroid jitter)
    max_out_s: float = 10.0  # camera time a track that left through a border is remembered for re-entry (0: off)
    border_px: float = 4.0  # a box this close to an image edge touches that border
    reentry_offset: float = 1.0  # along-border offset allowed at re-entry, in sizes of the larger of the two boxes
    scene_share: float = 0.54  # start score: at most high_score, this share of the scene's median score (start_score)
    scene_window_s: float = 10.0  # camera time of published scores that median is taken over


@dataclass
class Track:
    """One object followed over frames."""

    box: list[float]  # xyxy at last_seen (Python floats: four numbers cost less as a list than as numpy)
    mask: np.ndarray  # bool crop at mask_origin
    mask_origin: tuple[int, int]
    mask_area: int
    class_id: int
    last_seen: float
    velocity: list[float] = field(default_factory=lambda: [0.0, 0.0])  # px/s of the box centre (x, y)
    hits: int = 1
    extent: list[float] = field(default_factory=lambda: [0.0, 0.0])  # w h of the box when last seen whole
    centroid: Optional[np.ndarray] = None  # camera-frame metres at last_seen, when depth was fused
    track_id: int = 0  # 0 while tentative
    matched_last_frame: bool = True
    retired: bool = False  # its id went to a track that re-entered the view: dropped at the end of the frame

    def predicted_box(self, now: float, horizon: float) -> list[float]:
        step = min(max(now - self.last_seen, 0.0), horizon)
        dx, dy = self.velocity[0] * step, self.velocity[1] * step
        x0, y0, x1, y1 = self.box
        return [x0 + dx, y0 + dy, x1 + dx, y1 + dy]


@dataclass
class _Frame:
    """One frame's detections as the association reads them, converted once (Python lists where numpy
    scalars would cost more than the work)."""

    detections: Detections
    boxes: np.ndarray  # float64 xyxy
    origins: list  # [x0, y0] of each mask crop
    areas: list  # pixels of each mask
    classes: list
    scores: list
    has_masks: bool
    centroids: list  # 3D centroid or None, per detection
    box_lists: list  # the boxes as lists of Python floats
    table: np.ndarray  # pair_costs' detection table
    pixels: np.ndarray  # the masks packed for pair_costs

    @classmethod
    def of(cls, detections: Detections, centroids: Optional[list] = None) -> "_Frame":
        has_masks = detections.has_masks
        n = len(detections)
        boxes = detections.boxes.astype(np.float64)
        masks = detections.masks if has_masks else []
        origins = detections.mask_boxes[:, :2].tolist()
        areas = [int(np.count_nonzero(m)) for m in masks] if has_masks else [0] * n
        classes = detections.class_ids.tolist()
        centroids = list(centroids) if centroids is not None else [None] * n
        pixels, offsets = packed_masks(masks)
        return cls(detections, boxes, origins, areas, classes, detections.scores.tolist(), has_masks, centroids,
                   boxes.tolist(), detection_table(areas, classes, centroids, origins, masks, offsets), pixels)


class Tracker:
    """Assigns persistent ids to the instances of successive frames of one camera."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config
        self.tracks: list[Track] = []
        self._next_id = 1
        self._last_stamp: Optional[float] = None
        self._image_shape = (0, 0)  # (height, width) of the last frame: where its borders are
        self.created = 0  # confirmed tracks so far
        self.kept_by_unpublished = 0  # times an unpublished (weak) detection kept a confirmed track alive
        self.start_score = StartScore()  # the score from which a detection starts a track, per scene

    def reset(self) -> None:
        """Forget every track (ids continue: an id is never reused)."""
        self.tracks.clear()
        self.start_score.reset()
        self._last_stamp = None

    @property
    def active(self) -> int:
        """Confirmed tracks matched in the last frame."""
        return sum(1 for t in self.tracks if t.track_id and t.matched_last_frame)

    def update(self, detections: Detections, stamp_s: float,
               centroids: Optional[list[Optional[np.ndarray]]] = None,
               weak: Optional[Detections] = None) -> np.ndarray:
        """Track ids (int64, one per detection; 0 = not tracked yet) for this frame, stamped ``stamp_s``.

        ``centroids``: each detection's 3D centroid (None where it has none), for the 3D gate.
        A detection that is another reading of a stronger one (``alternative_of``) gets its id.
        ``weak``: unpublished detections of the same frame that may keep a live track alive (stage 3)."""
        published = len(detections)
        if weak is not None and len(weak):
            detections = Detections.concatenate(detections, weak)
            if centroids is not None:
                centroids = list(centroids) + [None] * len(weak)
        ids = self._update(detections, stamp_s, centroids, published)
        return ids[:published]

    def _update(self, detections: Detections, stamp_s: float, centroids: Optional[list[Optional[np.ndarray]]],
                published: int) -> np.ndarray:
        """``update`` on one set of detections, of which those from index ``published`` on are weak only."""
        cfg = self.config
        if self._last_stamp is not None and stamp_s < self._last_stamp:  # time went back (a bag loops): restart
            self.reset()
        self._last_stamp = stamp_s
        self._image_shape = detections.image_shape
        self.tracks = [t for t in self.tracks if self._remembered(t, stamp_s)]
        n = len(detections)
        ids = np.zeros(n, np.int64)
        primary = detections.alternative_of < 0 if n else np.zeros(0, bool)
        scores = detections.scores
        high = self.start_score.update(stamp_s, scores[:published], cfg.high_score, cfg.low_score, cfg.scene_share,
                                       cfg.scene_window_s)
        strong = [i for i in range(published) if primary[i] and scores[i] >= high]
        weak = [i for i in range(n) if primary[i] and cfg.low_score <= scores[i] and (i >= published or scores[i] < high)]
        matched_tracks: set[int] = set()
        assigned: dict[int, int] = {}
        frame = _Frame.of(detections, centroids)
        for det_i, trk_i in self._match(frame, strong, list(range(len(self.tracks))), stamp_s, cfg.min_iou,
                                        allow_lost=True):
            assigned[det_i] = trk_i
        # A confident detection whose mask changed too much to match (an occluder took most of it) stays
        # with a confirmed track of its class that it still sits on, rather than starting a duplicate.
        left = [k for k in range(len(self.tracks)) if k not in assigned.values() and self.tracks[k].track_id]
        unmatched = [i for i in strong if i not in assigned]
        for det_i, trk_i in self._match_by_place(frame, unmatched, left, stamp_s):
            assigned[det_i] = trk_i
        left = [k for k in range(len(self.tracks)) if k not in assigned.values() and self.tracks[k].matched_last_frame]
        for det_i, trk_i in self._match(frame, weak, left, stamp_s, cfg.min_iou_weak, allow_lost=False):
            assigned[det_i] = trk_i
        for det_i, trk_i in assigned.items():
            self._absorb(self.tracks[trk_i], frame, det_i, stamp_s)
            matched_tracks.add(trk_i)
        for k, track in enumerate(self.tracks):
            track.matched_last_frame = k in matched_tracks
        for det_i, trk_i in assigned.items():
            track = self.tracks[trk_i]
            if det_i >= published and track.track_id:
                self.kept_by_unpublished += 1
            if not track.track_id and track.hits >= cfg.min_hits:
                self._confirm(track, stamp_s)
            ids[det_i] = track.track_id
        for det_i in strong:
            if det_i not in assigned:
                self.tracks.append(self._new_track(frame, det_i, stamp_s))
                if cfg.min_hits <= 1:
                    self._confirm(self.tracks[-1], stamp_s)
                    ids[det_i] = self.tracks[-1].track_id
        # A tentative track ends at its first miss; a retired one handed its id to its object's new track.
        self.tracks = [t for t in self.tracks if (t.matched_last_frame or t.track_id) and not t.retired]
        for i in range(n):
            if not primary[i]:
                ids[i] = ids[int(detections.alternative_of[i])]
        return ids

    # -- internals ---------------------------------------------------------------------------
    def _match(self, frame: _Frame, det_idx: list[int], trk_idx: list[int], now: float, min_iou: float,
               allow_lost: bool) -> list[tuple[int, int]]:
        """Optimal assignment on ``pair_costs`` (mask IoU against each track's mask moved by its predicted shift;
        the IoU bound from the boxes and areas first; lost tracks also by proximity; the 3D gate)."""
        if not det_idx or not trk_idx:
            return []
        cfg = self.config
        tracks = [self.tracks[k] for k in trk_idx]
        pixels, offsets = packed_masks([t.mask for t in tracks])
        table = np.array([track_row(t.predicted_box(now, cfg.max_prediction_s), t.box, t.mask_area, t.class_id,
                                    None if t.centroid is None else _floats(t.centroid), self._gate_3d(t, now),
                                    t.mask_origin, t.mask.shape, offsets[b], allow_lost and not t.matched_last_frame,
                                    t.extent, now - t.last_seen) for b, t in enumerate(tracks)], np.float64)
        cost = pair_costs(det_idx, frame.boxes, frame.table, frame.pixels, table, pixels, min_iou,
                          cfg.class_change_cost, frame.has_masks, any(c is not None for c in frame.centroids))
        rows, cols = linear_sum_assignment(cost)
        return [(det_idx[r], trk_idx[c]) for r, c in zip(rows.tolist(), cols.tolist()) if cost[r, c] < FORBIDDEN]

    def _match_by_place(self, frame: _Frame, det_idx: list[int], trk_idx: list[int],
                        now: float) -> list[tuple[int, int]]:
        """Same class, the detection's centre inside the track's predicted box: nearest centres first."""
        if not det_idx or not trk_idx:
            return []
        tracks = [self.tracks[k] for k in trk_idx]
        predicted = np.array([t.predicted_box(now, self.config.max_prediction_s) for t in tracks])
        boxes = frame.boxes[det_idx]
        centre = (boxes[:, None, :2] + boxes[:, None, 2:]) / 2
        inside = np.all((centre >= predicted[None, :, :2]) & (centre <= predicted[None, :, 2:]), axis=2)
        same = frame.detections.class_ids[det_idx][:, None] == np.array([t.class_id for t in tracks])[None, :]
        size = np.maximum(predicted[:, 2:] - predicted[:, :2], 1.0)
        offset = np.linalg.norm((centre - (predicted[None, :, :2] + predicted[None, :, 2:]) / 2) / size[None], axis=2)
        cost = np.where(inside & same, offset, FORBIDDEN)
        for a, det_i in enumerate(det_idx):
            for b, track in enumerate(tracks):
                if cost[a, b] < FORBIDDEN and self._too_far_3d(frame.centroids[det_i], track, now):
                    cost[a, b] = FORBIDDEN
        rows, cols = linear_sum_assignment(cost)
        return [(det_idx[r], trk_idx[c]) for r, c in zip(rows, cols) if cost[r, c] < FORBIDDEN]

    def _remembered(self, track: Track, now: float) -> bool:
        """Still worth keeping: lost for at most max_lost_s, or (confirmed, gone through a border) max_out_s."""
        lost_s = now - track.last_seen
        return lost_s <= self.config.max_lost_s or (
            bool(track.track_id) and lost_s <= self.config.max_out_s and bool(self._border_sides(track.box)))

    def _border_sides(self, box: list[float]) -> set[int]:
        """The image borders a box touches: 0 left, 1 top, 2 right, 3 bottom."""
        height, width = self._image_shape
        near = self.config.border_px
        if not width or not height:
            return set()
        touches = (box[0] <= near, box[1] <= near, box[2] >= width - near, box[3] >= height - near)
        return {side for side, touching in enumerate(touches) if touching}

    def _returning(self, track: Track, now: float) -> Optional[Track]:
        """The confirmed track, gone from view, whose object ``track`` (being confirmed at a border) is:
        same class, left through a border this one touches, at most ``reentry_offset`` sizes away along it."""
        sides = self._border_sides(track.box)
        if not sides or self.config.max_out_s <= 0:
            return None
        best, best_offset = None, self.config.reentry_offset
        for old in self.tracks:
            if (old is track or old.retired or not old.track_id or old.matched_last_frame
                    or old.class_id != track.class_id or self._too_far_3d(track.centroid, old, now)):
                continue
            for side in sides & self._border_sides(old.box):
                axis = 1 if side in (0, 2) else 0  # along the border: y on the left and right, x on top and bottom
                size = max(track.box[axis + 2] - track.box[axis], old.box[axis + 2] - old.box[axis], 1.0)
                offset = abs(track.box[axis] + track.box[axis + 2] - old.box[axis] - old.box[axis + 2]) / 2 / size
                if offset <= best_offset:
                    best, best_offset = old, offset
        return best

    def _too_far_3d(self, centroid: Optional[np.ndarray], track: Track, now: float) -> bool:
        """Both in 3D and further apart than the track could have moved since it was seen."""
        if centroid is None or track.centroid is None:
            return False
        return math.dist(_floats(centroid), _floats(track.centroid)) > self._gate_3d(track, now)  # no numpy per pair

    def _gate_3d(self, track: Track, now: float) -> float:
        """How far (m) the track's object may have moved since it was seen."""
        return max(self.config.min_gate_3d, self.config.max_speed_3d * max(now - track.last_seen, 0.0))

    @staticmethod
    def _crop(frame: _Frame, i: int) -> tuple[np.ndarray, tuple[int, int], int]:
        if frame.has_masks:
            x0, y0 = frame.origins[i]
            return frame.detections.masks[i], (x0, y0), frame.areas[i]
        return np.zeros((0, 0), bool), (0, 0), 0

    def _new_track(self, frame: _Frame, i: int, now: float) -> Track:
        mask, origin, area = self._crop(frame, i)
        box = frame.box_lists[i]
        return Track(box=box, mask=mask, mask_origin=origin, mask_area=area, class_id=frame.classes[i],
                     last_seen=now, extent=[box[2] - box[0], box[3] - box[1]], centroid=frame.centroids[i])

    def _confirm(self, track: Track, now: float) -> None:
        """Give a track its id: the id of the object it is when that object re-entered the view, else a new one."""
        returning = self._returning(track, now)
        if returning is not None:
            track.track_id = returning.track_id
            returning.retired = True
            return
        track.track_id = self._next_id
        self._next_id += 1
        self.created += 1

    def _absorb(self, track: Track, frame: _Frame, i: int, now: float) -> None:
        """Move the track to detection ``i``. Its velocity is its centre's; its extent follows the box at once
        where it grows and slowly where it shrinks (the remembered size halves per ``extent_half_life_s`` while
        the box stays smaller), so a box that an occluder eats away keeps the size its object comes back with."""
        cfg = self.config
        x0, y0, x1, y1 = box = frame.box_lists[i]
        ox0, oy0, ox1, oy1 = track.box
        dt = now - track.last_seen
        keep = 1.0
        if dt > 0:
            w = cfg.velocity_smoothing
            step = w / (2 * dt)
            vx = track.velocity[0] * (1 - w) + (x0 + x1 - ox0 - ox1) * step
            vy = track.velocity[1] * (1 - w) + (y0 + y1 - oy0 - oy1) * step
            track.velocity = [vx, vy]
            keep = 0.5 ** (dt / cfg.extent_half_life_s)
        track.extent = [max(x1 - x0, track.extent[0] * keep), max(y1 - y0, track.extent[1] * keep)]
        track.box = box
        track.mask, track.mask_origin, track.mask_area = self._crop(frame, i)
        if frame.scores[i] >= self.config.high_score:
            track.class_id = frame.classes[i]  # a confident reading sets the class
        if frame.centroids[i] is not None:
            track.centroid = np.asarray(frame.centroids[i], np.float64)
        track.last_seen = now
        track.hits += 1


def _floats(vector) -> list[float]:
    """A 3-vector as Python floats: math.dist over numpy scalars costs 20x more (the same distance)."""
    return vector.tolist() if isinstance(vector, np.ndarray) else list(vector)
