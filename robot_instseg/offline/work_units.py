"""Inputs cut into independent units of work: a run of images of a folder, a window of a video or of a bag.

Each unit reads its own frames, so workers never pass frames between them, and the frames of the
units of one input, in unit order, are exactly the frames the single-process reader yields. A bag
read with depth is one unit: its frames pair with depth and CameraInfo through a stream that carries
state from message to message (``frame_sources._merge_depth``), which a window cut at an arbitrary
time would see differently.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from robot_instseg.io.frame_sources import (
    IMAGE_TYPES,
    VIDEO_SUFFIXES,
    Frame,
    _read_images,
    bag,
    bag_window,
    is_bag,
    list_images,
    open_bag,
    video,
)

GLOB_CHARS = "*?["


@dataclass(frozen=True)
class WorkUnit:
    """One piece of one input; ``source`` is the input's index in the plan, ``seq`` the unit's place in it."""

    seq: int
    source: int
    path: str
    kind: str  # "images", "video", "bag" (a time window, no depth) or "bag_depth" (the whole bag, with depth)
    images: tuple[str, ...] = ()
    start: Optional[int] = None  # video: first frame index; bag: first receive time, ns (inclusive)
    stop: Optional[int] = None  # exclusive; None: to the end
    topic: Optional[str] = None
    depth_topic: Optional[str] = None
    camera_info_topic: Optional[str] = None
    frames: int = 0  # expected, for progress (0: unknown)


@dataclass
class Plan:
    """The units of every readable input, and the inputs refused (with why) before any work started."""

    inputs: list[str]
    units: list[WorkUnit]
    refused: list[str]

    @property
    def total_frames(self) -> int:
        return sum(unit.frames for unit in self.units)


def expand_inputs(patterns: list[str]) -> list[str]:
    """Inputs as given, with shell-style patterns (``archive/**/*.mcap``, quoted so the shell leaves them)
    expanded in sorted order; a pattern that matches nothing is refused."""
    out: list[str] = []
    for pattern in patterns:
        if any(c in pattern for c in GLOB_CHARS) and not Path(pattern).exists():
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise ValueError(f"{pattern}: matches no file")
            out.extend(matches)
        else:
            out.append(pattern)
    return out


def plan_units(inputs: list[str], window_s: float, fps: float, topic: Optional[str] = None,
               depth_topic: Optional[str] = None, camera_info_topic: Optional[str] = None, workers: int = 1) -> Plan:
    """Cut every input into units: folders and videos by ``window_s * fps`` frames, or fewer so that each of
    ``workers`` gets four units of an input; bags by ``window_s`` of receive time (whole when read with depth).
    A bag that cannot be opened, or an input that is not one we read, is refused and named, not fatal: the
    others still run."""
    if window_s <= 0:
        raise ValueError(f"--window-s must be > 0, got {window_s}")
    units: list[WorkUnit] = []
    refused: list[str] = []
    per_unit = max(1, int(round(window_s * fps)))
    for source, path in enumerate(inputs):
        try:
            pieces = _units_of(Path(path), window_s, per_unit, topic, depth_topic, camera_info_topic, workers)
        except ValueError as exc:
            refused.append(str(exc))
            continue
        for piece in pieces:
            piece.update(seq=len(units), source=source, path=path)
            units.append(WorkUnit(**piece))
    return Plan(list(inputs), units, refused)


def _units_of(path: Path, window_s: float, per_unit: int, topic: Optional[str], depth_topic: Optional[str],
              camera_info_topic: Optional[str], workers: int) -> list[dict]:
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    if is_bag(path):
        return _bag_units(path, window_s, topic, depth_topic, camera_info_topic)
    if depth_topic is not None:
        raise ValueError(f"{path}: --depth-topic needs a bag input")
    if path.is_dir():
        images = [str(p) for p in list_images(path)]
        if not images:
            raise ValueError(f"{path}: no images")
        return [dict(vars(unit)) for unit in image_units(images, units_of_at_most(per_unit, len(images), workers))]
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return _video_units(path, per_unit, workers)
    raise ValueError(f"{path}: not a folder of images, a video ({', '.join(VIDEO_SUFFIXES)}) or a bag")


def _bag_units(path: Path, window_s: float, topic: Optional[str], depth_topic: Optional[str],
               camera_info_topic: Optional[str]) -> list[dict]:
    reader = open_bag(path)
    try:
        connections = [c for c in reader.connections if c.msgtype in IMAGE_TYPES and c.topic != depth_topic
                       and (topic is None or c.topic == topic)]
        if not connections:
            raise ValueError(f"{path}: no image topic{f' {topic}' if topic else ''}")
        chosen = connections[0].topic
        count = sum(c.msgcount for c in connections if c.topic == chosen)
        start, end = reader.start_time, reader.end_time
    finally:
        reader.close()
    if depth_topic is not None:
        return [{"kind": "bag_depth", "topic": topic, "depth_topic": depth_topic,
                 "camera_info_topic": camera_info_topic, "frames": count}]
    step = max(1, int(window_s * 1e9))
    windows = list(range(start, end + 1, step))
    share = count / max(1, len(windows))  # a progress estimate; the bar's total is corrected as frames arrive
    return [{"kind": "bag", "topic": chosen, "start": t, "stop": None if t + step > end else t + step,
             "frames": int(round(share * (i + 1))) - int(round(share * i))} for i, t in enumerate(windows)]


def units_of_at_most(per_unit: int, frames: int, workers: int) -> int:
    """Frames per unit: ``per_unit``, or fewer so that every worker gets about four units."""
    return max(1, min(per_unit, -(-frames // (4 * max(1, workers)))))


def image_units(paths: list[str], per_unit: int) -> list[WorkUnit]:
    """Image files in runs of ``per_unit`` (``seq`` and ``source`` 0: the caller places them)."""
    return [WorkUnit(seq=i // per_unit, source=0, path="", kind="images", images=tuple(paths[i:i + per_unit]),
                     frames=len(paths[i:i + per_unit])) for i in range(0, len(paths), per_unit)]


def _video_units(path: Path, per_unit: int, workers: int) -> list[dict]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    opened, count = capture.isOpened(), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    if not opened:
        raise ValueError(f"{path}: not a video OpenCV can open")
    per_unit = units_of_at_most(per_unit, count, workers) if count > 0 else per_unit
    starts = list(range(0, max(count, 1), per_unit))  # the frame count is a container's claim: the last unit is open
    return [{"kind": "video", "start": s, "stop": None if s == starts[-1] else s + per_unit,
             "frames": min(per_unit, max(0, count - s))} for s in starts]


def unit_frames(unit: WorkUnit) -> Iterator[Frame]:
    """The frames of one unit, read where the unit runs."""
    if unit.kind == "images":
        return _read_images([Path(p) for p in unit.images])
    if unit.kind == "video":
        return video(Path(unit.path), unit.start or 0, unit.stop)
    if unit.kind == "bag":
        return bag_window(Path(unit.path), str(unit.topic), unit.start, unit.stop)
    if unit.kind == "bag_depth":
        return bag(Path(unit.path), unit.topic, unit.depth_topic, unit.camera_info_topic)
    raise ValueError(f"unknown unit kind {unit.kind!r}")
