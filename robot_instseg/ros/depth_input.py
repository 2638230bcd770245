"""The node's depth side: ~/depth and ~/camera_info subscriptions, paired to colour frames by stamp
and fused into the instances (robot_instseg.geometry). Every way depth can be missing or unusable
ends in a reason code, never in an exception: 2D output does not depend on depth."""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from robot_instseg.engine.errors import InputError
from robot_instseg.engine.types import Detections
from robot_instseg.geometry.amodal_extent import with_whole_extent
from robot_instseg.geometry.frame_3d import frame_3d
from robot_instseg.geometry.fusion import FrameFusion
from robot_instseg.io.depth_frames import CameraFields, DepthFields, registered_depth
from robot_instseg.node.depth_pairing import NO_CAMERA_INFO, NO_DEPTH, CameraInfos, DepthBuffer, DepthCounts, DepthLag
from robot_instseg.node.node_stats import cdr_stamp_ns
from robot_instseg.ros.convert import stamp_ns

DEPTH_OFF = "depth_off"


class DepthInput:
    """Subscribes to depth and CameraInfo while the node is active; ``fuse_frame`` gives a frame its 3D."""

    def __init__(self, node: Node, qos: QoSProfile, depth_topic: str = "~/depth",
                 camera_info_topic: str = "~/camera_info") -> None:
        self.node = node
        self.buffer: DepthBuffer[bytes] = DepthBuffer()  # serialized: only the paired frame is deserialized
        self.counts = DepthCounts()
        self.infos: CameraInfos[CameraInfo] = CameraInfos()
        self.lag = DepthLag()  # how late this stream's depth comes after colour: the wait adapts to it
        self.wait_s = 0.0  # the wait the last frame was given
        self.last_depth: Optional[Image] = None  # the depth frame paired with the last fused colour frame
        self._subs = [node.create_subscription(Image, depth_topic, self._on_depth, qos, raw=True),
                      node.create_subscription(CameraInfo, camera_info_topic, self._on_camera_info, qos)]

    @property
    def depth_topic(self) -> str:
        return self._subs[0].topic_name

    def _on_depth(self, serialized: bytes) -> None:
        stamp = cdr_stamp_ns(serialized)
        if stamp is not None:  # not CDR: nothing can be paired with it (it fails like a missing frame)
            self.lag.depth(stamp, time.monotonic())
            self.buffer.add(stamp, serialized)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.infos.add(stamp_ns(msg.header), msg)

    def destroy(self) -> None:
        for sub in self._subs:
            self.node.destroy_subscription(sub)
        self._subs = []
        self.buffer.clear()
        self.infos.clear()
        self.lag.clear()

    def snapshot(self, settings: dict[str, Any]) -> dict:
        """DepthCounts' snapshot with the wait: the one last given, and the learned lag it follows."""
        snap = self.counts.snapshot()
        lag = self.lag.high_lag_s()
        snap.update(wait_ms=self.wait_s * 1e3, lag_ms=None if lag is None else lag * 1e3,
                    wait_cap_ms=float(settings["depth_wait_max_ms"]))
        return snap

    def fuse_frame(self, header: Header, detections: Detections, received_at: float,
                   settings: dict[str, Any], labels: Optional[np.ndarray] = None
                   ) -> tuple[Optional[FrameFusion], str, str]:
        """(3D of the frame's instances, "", "") or (None, reason, detail). Waits for the frame's depth at most
        the learned lag of the stream (``DepthLag``: at least ``depth_wait_ms``, at most ``depth_wait_max_ms``)
        after ``received_at`` (monotonic), and only while it can still come."""
        self.last_depth = None
        self.lag.max_skew_ns = int(float(settings["depth_max_skew_ms"]) * 1e6)
        self.lag.colour(stamp_ns(header), received_at)
        self.wait_s = self.lag.wait_s(float(settings["depth_wait_ms"]) / 1e3, float(settings["depth_wait_max_ms"]) / 1e3)
        deadline = received_at + self.wait_s
        serialized, reason = self.buffer.pair(stamp_ns(header), self.lag.max_skew_ns, deadline)
        if serialized is None:
            return None, reason, f"no depth frame within {settings['depth_max_skew_ms']} ms of stamp " \
                                 f"{header.stamp.sec}.{header.stamp.nanosec:09d} on {self.depth_topic}"
        info = self.infos.for_frame(stamp_ns(header), deadline)
        if info is None:
            return None, NO_CAMERA_INFO, f"no CameraInfo received on {self._subs[1].topic_name}"
        try:
            try:
                depth_msg = deserialize_message(serialized, Image)
            except Exception as exc:  # bytes that are not an Image: bad input, not a crash
                raise InputError(f"depth message is not a valid sensor_msgs/Image ({exc})", "bad_message") from exc
            depth, k = registered_depth(
                DepthFields(depth_msg.encoding, depth_msg.height, depth_msg.width, depth_msg.step, depth_msg.data,
                            bool(depth_msg.is_bigendian)),
                CameraFields(info.width, info.height, info.k), detections.image_shape,
                int(settings["max_input_pixels"]))
        except InputError as exc:
            return None, exc.reason, str(exc)
        self.last_depth = depth_msg
        fusion = frame_3d(detections, depth, k, labels, complete=bool(settings["depth_complete_masks"]),
                          order=bool(settings["occlusion_from_depth"]))
        if settings["depth_amodal_extent"]:
            fusion = with_whole_extent(fusion, detections, depth, k)
        return fusion, "", ""

    def frame_3d(self, header: Header, detections: Detections, received_at: float, settings: dict[str, Any],
                 log: Callable[[str, str], None], labels: Optional[np.ndarray] = None
                 ) -> tuple[Optional[FrameFusion], str]:
        """(FrameFusion or None, depth_status) for one frame, counted; a problem (anything but no depth stream
        at all) is also logged through ``log(key, line)``, which rate-limits."""
        fusion, reason, detail = self.fuse_frame(header, detections, received_at, settings, labels)
        if fusion is None:
            self.counts.frame_without(reason, detail)
            if reason != NO_DEPTH:
                log(f"depth:{reason}", f"frame published without 3D ({reason}): {detail}")
            return None, reason
        self.counts.fused_frame()
        return fusion, ""
