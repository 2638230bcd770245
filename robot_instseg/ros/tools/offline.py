"""``robot-instseg run INPUT --out BAG``: segment frames offline into a bag with the topics the
node publishes (~/instances, ~/labels) plus the input frames, built by the node's own
converters from the node's own per-frame pipeline, so offline and live outputs are equal.
Needs the ROS message packages (no running ROS graph, no rclpy.init)."""

from __future__ import annotations

import heapq
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from robot_instseg.engine.model_paths import model_sha256
from robot_instseg.io.frame_sources import Frame
from robot_instseg.offline.frame_stage import SegmentedFrame, frame_stamp, track
from robot_instseg.recording.bag_writer import BagWriter
from robot_instseg.recording.msg_types import COMPRESSED_IMAGE, IMAGE, INSTANCE_ARRAY, canonical_cdr
from robot_instseg.ros.convert import image_msg, instances_msg, labels_msg
from robot_instseg.ros.depth_input import DEPTH_OFF
from robot_instseg.tracking.tracker import Tracker

LOG = logging.getLogger("robot_instseg")


@dataclass
class RunSummary:
    """What an offline run to a bag processed, skipped and wrote."""

    frames: int = 0
    instances: int = 0
    skipped: list = field(default_factory=list)
    with_3d: int = 0  # frames whose instances got 3D (run with depth)
    without_3d: dict = field(default_factory=dict)  # reason -> frames


def _input_message(frame: Frame, header: Header):
    if frame.raw is None:
        return IMAGE, image_msg(frame.rgb, "rgb8", header)
    if frame.raw_type.endswith("CompressedImage"):
        return COMPRESSED_IMAGE, CompressedImage(header=header, format=frame.raw["format"], data=frame.raw["data"])
    msg = Image(header=header, height=frame.raw["height"], width=frame.raw["width"], encoding=frame.raw["encoding"],
                is_bigendian=int(frame.raw["is_bigendian"]), step=frame.raw["step"])
    msg.data = frame.raw["data"]
    return IMAGE, msg


def _cdr(msg, msgtype: str) -> bytes:
    """A message's CDR bytes, the same on every run (``canonical_cdr``)."""
    return canonical_cdr(bytes(serialize_message(msg)), msgtype)


def merged_by_time(streams: Sequence[Iterable[Frame]]) -> Iterator[Frame]:
    """Several cameras' frames (each stream in its own time order) as one stream in receive-time order, so a
    multi-camera bag is written as the node would have recorded it."""
    keyed = [((f.timestamp_ns or 0, index, f) for f in stream) for index, stream in enumerate(streams)]
    return (frame for _, _, frame in heapq.merge(*keyed, key=lambda item: (item[0], item[1])))


def run_to_bag(segmenter, segmented: Iterable[SegmentedFrame], out: Path, node_name: str = "seg_node",
               storage: str = "mcap", image_topic: str = "/camera/image_raw", period_s: float = 1 / 30,
               with_images: bool = True, on_frame: Optional[Callable[[], None]] = None, masks: str = "visible",
               tracker: Optional[Tracker] = None, cameras: Optional[dict[str, str]] = None) -> RunSummary:
    """Write frames that went through their stateless stage (``offline.frame_stage``: here, or on Ray
    workers, in input order) as the node publishes them; ``segmenter`` names the model in the bag.

    Frames without a stamp (folders, videos) get stamps ``period_s`` apart from t = 0.
    ``masks``: "visible" (what the node publishes) or "raw" (the decoder's overlapping masks)
    in the InstanceArrays; the label image always holds the resolved owners. Frames fused with depth
    get their 3D fields; one whose depth is missing or unusable gets has_3d false and its reason.
    ``tracker``: track ids over the frames' stamps, as the node assigns them.
    ``cameras``: input topic -> camera name for a multi-camera bag (``merged_by_time``): each camera's outputs go
    to /NODE/CAMERA/instances and /NODE/CAMERA/labels, as the node with ``cameras`` publishes them, and each
    camera is tracked on its own (ids never cross cameras).
    """
    summary = RunSummary()
    trackers: dict[str, Optional[Tracker]] = {"": tracker}
    if cameras:
        trackers = {name: (Tracker(tracker.config) if tracker is not None else None) for name in cameras.values()}
    writer = BagWriter(out, storage, {"robot_instseg.model": str(segmenter.model_path),
                                      "robot_instseg.model_sha256": model_sha256(segmenter.model_path),
                                      "robot_instseg.classes": json.dumps(list(segmenter.class_names)),
                                      "robot_instseg.source": "robot-instseg run", "robot_instseg.masks": masks})
    try:
        for index, done in enumerate(segmented):
            frame = done.frame
            if on_frame is not None:
                on_frame()
            sec, nanosec = frame_stamp(frame, index, period_s)
            header = Header(frame_id=(frame.raw or {}).get("frame_id") or "camera")
            header.stamp.sec, header.stamp.nanosec = int(sec), int(nanosec)
            timestamp = frame.timestamp_ns if frame.timestamp_ns is not None else sec * 10**9 + nanosec
            if done.output is None:
                summary.skipped.append(f"{frame.name} at {sec}.{nanosec:09d}: {done.error}")
                continue
            output, fusion = done.output, done.fusion
            depth_status = DEPTH_OFF if done.depth_reason is None else done.depth_reason
            if done.depth_reason == "":
                summary.with_3d += 1
            elif done.depth_reason is not None:
                summary.without_3d[done.depth_reason] = summary.without_3d.get(done.depth_reason, 0) + 1
            camera = cameras.get(frame.topic, "") if cameras else ""
            track(trackers.get(camera), done, sec + nanosec * 1e-9)
            instances = output.detections(masks)
            if with_images:
                msgtype, msg = _input_message(frame, header)
                writer.write(frame.topic or image_topic, msgtype, timestamp, _cdr(msg, msgtype))
            prefix = f"/{node_name}/{camera}" if camera else f"/{node_name}"
            writer.write(f"{prefix}/instances", INSTANCE_ARRAY, timestamp,
                         _cdr(instances_msg(instances, header, fusion, depth_status), INSTANCE_ARRAY))
            writer.write(f"{prefix}/labels", IMAGE, timestamp, _cdr(labels_msg(output.labels, header), IMAGE))
            summary.frames += 1
            summary.instances += len(instances)
    finally:
        writer.close()
    return summary
