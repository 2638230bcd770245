"""One camera of the node: everything that is per stream, with no rclpy.

A robot's head, wrist and base cameras share one node and one model, but nothing else: each
camera has its own mailbox (so no frame is older than the newest of its own camera), counters,
size changes, tracker (ids never cross cameras), transport, QoS and ``max_rate_hz``. The node
(``robot_instseg.ros``) only wires a stream's subscriptions and publishers under
``~/<camera>/...``; the empty camera name is the single camera of old, with its topic names.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Optional, Sequence

from robot_instseg.node.frame_mailbox import FrameMailbox
from robot_instseg.node.node_stats import LogThrottle, NodeStats
from robot_instseg.node.tracking import NodeTracking

# Node parameters a camera may set for itself as ``<camera>.<name>`` (default: the node's value).
PER_CAMERA_PARAMS = ("image_transport", "input_reliability", "input_queue_depth", "max_rate_hz", "depth_mode")
MAX_CAMERAS = 16
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def cameras_problem(names: Sequence[str]) -> Optional[str]:
    """Why a ``cameras`` list is refused (each name becomes a topic namespace and a parameter prefix), or None."""
    if len(names) > MAX_CAMERAS:
        return f"cameras: at most {MAX_CAMERAS} cameras, got {len(names)}"
    for name in names:
        if not isinstance(name, str) or not _NAME.match(name):
            return (f"cameras: {name!r} is not a camera name (a letter, then letters, digits or _; it becomes the "
                    "topic namespace ~/<camera>/ and the parameter prefix <camera>.)")
    duplicates = sorted({n for n in names if list(names).count(n) > 1})
    if duplicates:
        return f"cameras: {', '.join(duplicates)} named more than once"
    return None


AUTO_GPU_BATCH = 4


def effective_max_batch(max_batch: int, segmenter: Any = None) -> int:
    """``max_batch``, or for 0 (auto) what pays where the model runs: a batch of 4 on a GPU runtime, one frame at a
    time on the CPU (measured there: 1.03-1.05x throughput for a third more memory, README)."""
    if max_batch > 0:
        return max_batch
    return AUTO_GPU_BATCH if segmenter is not None and getattr(segmenter, "runtime_on_cuda", False) else 1


def camera_key(camera: str, name: str) -> str:
    """The parameter a camera sets for itself: ``head.max_rate_hz``; the node's own for the single camera."""
    return f"{camera}.{name}" if camera else name


def split_camera_key(key: str) -> tuple[str, str]:
    """``head.max_rate_hz`` -> ("head", "max_rate_hz"); ``max_rate_hz`` -> ("", "max_rate_hz")."""
    camera, _, name = key.rpartition(".")
    return camera, name


class CameraStream:
    """The per-camera state and decisions; thread-safe where the callback, worker and timer meet."""

    def __init__(self, name: str, settings: dict[str, Any], on_frame: Optional[Callable[[], None]] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.mailbox: FrameMailbox = FrameMailbox(on_put=on_frame)
        self.stats = NodeStats()
        self.throttle = LogThrottle(5.0)
        self.tracking = NodeTracking(settings)
        self.taken_at: Optional[float] = None  # monotonic time the worker last took a frame of this camera
        self.reliability = ""  # what the image subscription uses now (``auto`` resolved), "" while unsubscribed
        self.reliability_why = ""
        self._clock = clock

    @property
    def label(self) -> str:
        """How diagnostics and logs name the camera."""
        return self.name or "camera"

    def topic(self, leaf: str) -> str:
        """``~/image`` for the single camera, ``~/head/image`` for camera head."""
        return f"~/{self.name}/{leaf}" if self.name else f"~/{leaf}"

    def setting(self, settings: dict[str, Any], name: str) -> Any:
        """This camera's value of ``name``: its own ``<camera>.<name>`` when it has one, else the node's."""
        return settings.get(camera_key(self.name, name), settings[name])

    def due_in(self, settings: dict[str, Any], now: float) -> float:
        """Seconds until this camera may be served under its ``max_rate_hz`` (0: now)."""
        rate = float(self.setting(settings, "max_rate_hz"))
        if rate <= 0 or self.taken_at is None:
            return 0.0
        return max(0.0, self.taken_at + 1.0 / rate - now)

    def start(self) -> None:
        """Activation: an empty open mailbox, the stall clock started, no rate history."""
        self.mailbox.reopen()
        self.taken_at = None
        self.stats.mark_started()

    def stop(self) -> None:
        self.mailbox.close()
        self.mailbox.clear()
        self.reliability = ""


class FairTurns:
    """Which cameras' frames the worker takes next: round robin over the cameras that have a frame waiting and
    are due under their ``max_rate_hz``, starting after the last camera served, at most ``limit`` a turn.

    Each camera holds one frame at a time, so a turn takes at most one frame of each: a 30 Hz camera
    can never take the turn of a 5 Hz one, and under overload every camera is served equally often.
    """

    def __init__(self) -> None:
        self._next = 0

    def take(self, streams: Sequence[CameraStream], settings: dict[str, Any], limit: int,
             now: float) -> tuple[list[tuple[CameraStream, Any]], float]:
        """(the (stream, frame) pairs of this turn, seconds until a waiting frame falls due when none is)."""
        taken: list[tuple[CameraStream, Any]] = []
        soonest = float("inf")
        count = len(streams)
        last_served = None
        for offset in range(count):
            if len(taken) >= max(limit, 1):
                break
            index = (self._next + offset) % count
            stream = streams[index]
            if not stream.mailbox.waiting:
                continue
            wait = stream.due_in(settings, now)
            if wait > 0:
                soonest = min(soonest, wait)
                continue
            item = stream.mailbox.poll()
            if item is None:
                continue
            stream.taken_at = now
            taken.append((stream, item))
            last_served = index
        if last_served is not None:
            self._next = (last_served + 1) % count
        return taken, soonest
