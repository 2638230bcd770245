"""What the node has done, for /diagnostics and the demo: counters, fps, latency percentiles.

rclpy-free and thread-safe (the image callback, the worker and the diagnostics timer all
touch it). ``health`` turns a snapshot into an OK / WARN / ERROR level and a message that
says what to do.
"""

from __future__ import annotations

import collections
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

OK, WARN, ERROR = 0, 1, 2
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR"}


@dataclass
class Health:
    """A diagnostics level (OK, WARN, ERROR) and the reason shown with it."""

    level: int
    message: str


@dataclass
class NodeStats:
    """Rates, latency percentiles and drop counts of a running node, thread-safe."""

    window: int = 300  # latency samples kept
    fps_window_s: float = 5.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _latency_ms: collections.deque = field(default_factory=collections.deque, repr=False)
    _segment_ms: collections.deque = field(default_factory=collections.deque, repr=False)
    _done_at: collections.deque = field(default_factory=collections.deque, repr=False)
    _instances: collections.deque = field(default_factory=collections.deque, repr=False)
    received: int = 0
    dropped: int = 0
    processed: int = 0
    rejected: int = 0
    rejected_by_reason: dict = field(default_factory=dict)
    last_rejection: str = ""
    rejected_at: float = 0.0
    size_changes: int = 0
    frame_size: Optional[tuple[int, int]] = None
    inference_errors: int = 0
    last_error: str = ""
    last_input_at: float = 0.0
    started_at: float = 0.0  # activation: the stall clock starts here
    last_segmented_at: float = 0.0
    worker_restarts: int = 0
    camera: "StampGaps" = field(default_factory=lambda: StampGaps())
    transport_lost: int = 0  # reported by the middleware (message_lost events)
    qos_incompatible: str = ""  # the policy of the last incompatible camera publisher

    def qos_incompatible_seen(self, policy: str) -> None:
        with self._lock:
            self.qos_incompatible = policy

    def messages_lost(self, count: int) -> None:
        with self._lock:
            self.transport_lost += max(count, 0)

    def mark_started(self) -> None:
        with self._lock:
            self.started_at = time.monotonic()

    def worker_restarted(self) -> None:
        with self._lock:
            self.worker_restarts += 1

    def frame_received(self, dropped_one: bool, stamp_ns: Optional[int] = None) -> None:
        with self._lock:
            self.received += 1
            self.dropped += int(dropped_one)
            self.last_input_at = time.monotonic()
            if stamp_ns is not None:
                self.camera.add(stamp_ns)

    def frame_rejected(self, reason: str, detail: str) -> None:
        with self._lock:
            self.rejected += 1
            self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + 1
            self.last_rejection = detail
            self.rejected_at = time.monotonic()

    def frame_size_seen(self, size: tuple[int, int]) -> Optional[tuple[int, int]]:
        """Record the frame size; return the previous one when it changed."""
        with self._lock:
            previous, self.frame_size = self.frame_size, size
            if previous is not None and previous != size:
                self.size_changes += 1
                return previous
            return None

    def inference_failed(self, detail: str) -> None:
        with self._lock:
            self.inference_errors += 1
            self.last_error = detail

    def frame_done(self, latency_ms: float, segment_ms: float, instances: int) -> None:
        now = time.monotonic()
        with self._lock:
            self.processed += 1
            self.last_segmented_at = now
            for q, v in ((self._latency_ms, latency_ms), (self._segment_ms, segment_ms), (self._instances, instances)):
                q.append(v)
                if len(q) > self.window:
                    q.popleft()
            self._done_at.append(now)
            while self._done_at and now - self._done_at[0] > self.fps_window_s:
                self._done_at.popleft()

    def snapshot(self) -> dict:
        now = time.monotonic()
        with self._lock:
            lat = np.asarray(self._latency_ms, np.float64)
            seg = np.asarray(self._segment_ms, np.float64)
            done = [t for t in self._done_at if now - t <= self.fps_window_s]
            fps = (len(done) - 1) / (done[-1] - done[0]) if len(done) >= 2 and done[-1] > done[0] else 0.0
            return {
                "fps": fps,
                "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
                "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
                "segment_p50_ms": float(np.percentile(seg, 50)) if seg.size else float("nan"),
                "instances_mean": float(np.mean(self._instances)) if self._instances else 0.0,
                "received": self.received, "dropped": self.dropped, "processed": self.processed,
                "rejected": self.rejected, "rejected_by_reason": dict(self.rejected_by_reason),
                "last_rejection": self.last_rejection,
                "rejected_recently": self.rejected_at > 0 and now - self.rejected_at < 10.0,
                "size_changes": self.size_changes, "frame_size": self.frame_size,
                "inference_errors": self.inference_errors, "last_error": self.last_error,
                "seconds_since_input": (now - self.last_input_at) if self.last_input_at else float("inf"),
                "seconds_since_segmented": now - max(self.last_segmented_at, self.started_at)
                if (self.last_segmented_at or self.started_at) else float("inf"),
                "worker_restarts": self.worker_restarts,
                "camera_rate_hz": self.camera.rate_hz(), "frames_missing": self.camera.missing,
                "recent_loss": self.camera.recent_loss(),
                "transport_lost": self.transport_lost, "qos_incompatible": self.qos_incompatible,
            }


def health(state: str, snapshot: dict, model_error: str = "", stale_after_s: float = 5.0,
           worker_alive: bool = True, stall_timeout_s: float = 5.0) -> Health:
    """One level and an actionable message for the node's state and recent behaviour."""
    if model_error:
        return Health(ERROR, f"model not loaded: {model_error}. Fix model_path (or the file), then "
                             "configure again (ros2 lifecycle set <node> configure)")
    if state != "active":
        return Health(WARN if state == "inactive" else ERROR,
                      f"node is {state}: no images are processed (ros2 lifecycle set <node> activate)")
    if snapshot["qos_incompatible"] and snapshot["received"] == 0:
        return Health(ERROR, f"the camera publisher's QoS is incompatible with this subscription (policy "
                             f"{snapshot['qos_incompatible']}): no frame arrives; set input_reliability to "
                             "best_effort")
    if not worker_alive:
        return Health(ERROR, f"the segmentation worker is not running (restarted {snapshot['worker_restarts']} "
                             "time(s)); deactivate and activate the node, and report the log")
    receiving = snapshot["seconds_since_input"] < stall_timeout_s
    if receiving and snapshot["seconds_since_segmented"] > stall_timeout_s:
        why = (snapshot["last_error"] if snapshot["inference_errors"] else
               snapshot["last_rejection"] if snapshot["rejected"] else "the worker is stalled")
        return Health(ERROR, f"frames arrive but none was segmented for {snapshot['seconds_since_segmented']:.0f} s: "
                             f"{why}")
    if snapshot["last_error"] and snapshot["inference_errors"] and snapshot["processed"] == 0:
        return Health(ERROR, f"inference fails on every frame: {snapshot['last_error']}")
    if receiving and snapshot["recent_loss"] > 0.5:
        return Health(WARN, f"most camera frames never reach the node ({snapshot['recent_loss']:.0%} of the recent "
                            f"ones, from gaps in the stamps at {snapshot['camera_rate_hz']:.1f} Hz): try "
                            "input_reliability reliable, a larger socket buffer (README), or compressed images")
    if snapshot["rejected_recently"]:
        return Health(WARN, f"input frames rejected ({snapshot['rejected']} so far): {snapshot['last_rejection']}")
    if snapshot["seconds_since_input"] > stale_after_s:
        return Health(WARN, "no images received: check that the camera publishes and the image topic remap "
                            "(and input_reliability against the camera's QoS)")
    return Health(OK, f"segmenting at {snapshot['fps']:.1f} fps")


def cdr_stamp_ns(serialized: bytes) -> Optional[int]:
    """header.stamp of a serialized message that starts with a std_msgs/Header (Image,
    CompressedImage), read from the CDR bytes without deserializing: stamps of frames the
    mailbox drops are counted too. None when the bytes are too short or not CDR."""
    if len(serialized) < 12 or serialized[0] != 0 or serialized[1] not in (0, 1):
        return None
    sec, nanosec = struct.unpack_from("<iI" if serialized[1] == 1 else ">iI", serialized, 4)
    if nanosec >= 1_000_000_000:
        return None
    return sec * 1_000_000_000 + nanosec


@dataclass
class StampGaps:
    """The camera's rate and its missing frames, estimated from the stamps that arrive.

    The period is the shortest recent stamp step (steps under a quarter of the median, e.g.
    two cameras on one topic, are ignored): when most frames are lost, the median step is a
    multiple of the period but the shortest is still one. A step of k periods (k >= 1.5) means
    about k - 1 frames were lost before the node (transport, or the camera itself). Steps
    backwards or of zero (a replay restarted, duplicate stamps) and steps over ``pause_periods``
    (the camera paused or a new stream began) count no loss.
    """

    window: int = 60
    pause_periods: int = 30
    missing: int = 0
    _last_ns: Optional[int] = None
    _steps: collections.deque = field(default_factory=collections.deque, repr=False)
    _recent: collections.deque = field(default_factory=collections.deque, repr=False)  # (arrived, missing) per step

    def add(self, stamp_ns: int) -> None:
        last, self._last_ns = self._last_ns, stamp_ns
        if last is None or stamp_ns <= last:
            return
        step = stamp_ns - last
        period = self.period_ns()
        lost = 0
        if period and step > self.pause_periods * period:
            return  # a pause or a new stream: neither a loss nor a period to learn from
        if period and step >= 1.5 * period:
            lost = int(round(step / period)) - 1
            self.missing += lost
        self._steps.append(step)
        if len(self._steps) > self.window:
            self._steps.popleft()
        self._recent.append(lost)
        if len(self._recent) > self.window:
            self._recent.popleft()

    def period_ns(self) -> float:
        if len(self._steps) < 3:
            return 0.0
        steps = np.asarray(self._steps, np.float64)
        return float(steps[steps >= 0.25 * np.median(steps)].min())

    def rate_hz(self) -> float:
        period = self.period_ns()
        return 1e9 / period if period else 0.0

    def recent_loss(self) -> float:
        """Share of the camera's recent frames that never arrived."""
        lost = sum(self._recent)
        return lost / (lost + len(self._recent)) if self._recent else 0.0


class LogThrottle:
    """Allow one log line per key per ``period`` s, and count what was held back."""

    def __init__(self, period: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period = period
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> Optional[int]:
        """None when this line should be skipped; else the number skipped since the last one."""
        now = self._clock()
        with self._lock:
            if now - self._last.get(key, -1e9) < self.period:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._held.pop(key, 0)
