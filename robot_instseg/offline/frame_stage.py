"""One frame's stateless work (decode, segment, fuse depth), the same in a plain run and on a Ray
worker; everything that needs order (tracking, stamps for frames without one, writing) stays with
the caller, so a distributed run equals the single-process one by construction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator, Optional

from robot_instseg.engine.errors import InputError
from robot_instseg.engine.frame_pipeline import FrameOutput, segment_frame
from robot_instseg.io.frame_sources import Frame, frame_depth, frame_image

if TYPE_CHECKING:
    from robot_instseg.engine.segmenter import Segmenter
    from robot_instseg.geometry.fusion import FrameFusion
    from robot_instseg.tracking.tracker import Tracker


@dataclass
class SegmentedFrame:
    """A frame after its stateless stage: the output, or why there is none."""

    frame: Frame  # depth pixels dropped once fused (they are not written)
    output: Optional[FrameOutput] = None  # None: the frame could not be decoded (``error``)
    error: str = ""
    fusion: Optional[FrameFusion] = None
    depth_reason: Optional[str] = None  # None: depth not asked for; "": fused; else InputError's reason code


def segment_one(segmenter: Segmenter, frame: Frame, depth: bool = False, complete: bool = True) -> SegmentedFrame:
    """Decode and segment ``frame`` as the node does; with ``depth``, fuse the depth it carries (the node's
    depth_complete_masks is ``complete``) and read the occlusion order from it (occlusion_from_depth). A frame that cannot be decoded comes back with ``error``."""
    from robot_instseg.geometry.frame_3d import frame_3d

    try:
        image, order = frame_image(frame)
    except InputError as exc:
        return SegmentedFrame(frame, error=str(exc))
    done = SegmentedFrame(frame, segment_frame(segmenter, image, order))
    if depth:
        try:
            depth_m, k = frame_depth(frame, done.output.visible.image_shape)  # type: ignore[union-attr]
            output = done.output
            done.fusion = frame_3d(output.visible, depth_m, k, output.labels, complete=complete)  # type: ignore[union-attr]
            done.depth_reason = ""
        except InputError as exc:
            done.depth_reason = exc.reason
    frame.depth = frame.depth_fields = None  # used; never written, so never shipped back from a worker
    return done


def segment_all(segmenter: Segmenter, frames: Iterable[Frame], depth: bool = False,
                complete: bool = True) -> Iterator[SegmentedFrame]:
    """``segment_one`` of every frame, lazily, in order (the single-process run)."""
    return (segment_one(segmenter, frame, depth, complete) for frame in frames)


def frame_stamp(frame: Frame, index: int, period_s: float) -> tuple[int, int]:
    """(sec, nanosec) of a frame: its own stamp (bags), else ``index`` frames of ``period_s`` after t = 0."""
    if frame.stamp is not None:
        return frame.stamp
    sec, nanosec = divmod(int(round(index * period_s * 1e9)), 10**9)
    return sec, nanosec


def track(tracker: Optional[Tracker], done: SegmentedFrame, t_s: float) -> None:
    """Give ``done``'s instances the tracker's ids at time ``t_s``, as the node does after depth (3D centroids
    gate the matches); the raw masks are the same instances and get the same ids. Nothing without a tracker."""
    if tracker is None or done.output is None:
        return
    output = done.output
    centroids = done.fusion.centroids() if done.fusion is not None else None
    output.visible.track_ids = tracker.update(output.visible, t_s, centroids, output.weak)
    output.result.detections.track_ids = output.visible.track_ids
