"""The node's tracker: built from the parameters, fed each frame's visible detections with its camera
stamp, and reported in diagnostics (active tracks, new tracks per minute; id switches cannot be known
live, so none are claimed)."""

from __future__ import annotations

import collections
import time
from typing import Any, Callable, Optional

from robot_instseg.engine.types import Detections
from robot_instseg.tracking.tracker import Tracker, TrackerConfig

RATE_WINDOW_S = 60.0


def weak_score_threshold(settings: dict[str, Any]) -> Optional[float]:
    """The Segmenter's weak_score_threshold: with tracking on, the tracker's ``track_low_score`` (the Segmenter
    decodes from it for the tracker alone when it is under ``score_threshold``); off, None."""
    return float(settings["track_low_score"]) if settings["tracking"] else None


def tracker_config(settings: dict[str, Any]) -> TrackerConfig:
    """The TrackerConfig the node parameters describe."""
    return TrackerConfig(high_score=float(settings["track_high_score"]), low_score=float(settings["track_low_score"]),
                         min_iou=float(settings["track_min_iou"]), min_hits=int(settings["track_min_hits"]),
                         max_lost_s=float(settings["track_max_lost_s"]),
                         max_out_s=float(settings["track_max_out_s"]),
                         scene_share=float(settings["track_scene_share"]))


class NodeTracking:
    """Sets ``track_ids`` on every frame's detections while ``tracking`` is on."""

    def __init__(self, settings: dict[str, Any], clock: Callable[[], float] = time.monotonic) -> None:
        self.tracker = Tracker(tracker_config(settings))
        self._clock = clock
        self._created: collections.deque = collections.deque()  # wall times of new confirmed tracks
        self._weak_last_frame = 0

    def apply(self, settings: dict[str, Any]) -> None:
        """New parameter values take effect at the next frame; the tracks live on (off clears them)."""
        self.tracker.config = tracker_config(settings)
        if not settings["tracking"]:
            self.tracker.reset()

    def assign(self, detections: Detections, stamp_s: float, settings: dict[str, Any],
               centroids: Optional[list] = None, weak: Optional[Detections] = None) -> None:
        """Give ``detections`` their track ids (all 0 with tracking off); ``centroids`` (3D, or None per
        instance) let the tracker refuse matches between objects at different depths; ``weak`` (the
        frame's unpublished detections under score_threshold) may keep a track alive."""
        if not settings["tracking"]:
            return
        before = self.tracker.created
        self._weak_last_frame = len(weak) if weak is not None else 0
        detections.track_ids = self.tracker.update(detections, stamp_s, centroids, weak)
        now = self._clock()
        self._created.extend([now] * (self.tracker.created - before))
        while self._created and now - self._created[0] > RATE_WINDOW_S:
            self._created.popleft()

    def diagnostic_values(self, unpublished_from: Optional[float]) -> dict[str, str]:
        """Active tracks, confirmed tracks so far, new confirmed tracks in the last minute, and the unpublished
        detections the tracker sees: the score the Segmenter decodes them from (``unpublished_from``; None:
        it decodes none), how many in the last frame, how often one kept a confirmed track alive."""
        return {"tracks_active": str(self.tracker.active), "tracks_created": str(self.tracker.created),
                "tracks_new_last_minute": str(len(self._created)),
                "tracking_start_score": "n/a" if self.tracker.start_score.value is None else
                f"{self.tracker.start_score.value:.2f}",
                "tracking_unpublished_from_score": "off" if unpublished_from is None else f"{unpublished_from:.2f}",
                "tracking_unpublished_last_frame": str(self._weak_last_frame),
                "tracks_kept_by_unpublished": str(self.tracker.kept_by_unpublished)}
