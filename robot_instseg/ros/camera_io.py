"""One camera's ROS side: its image subscription (QoS as the camera offers it), depth input and publishers,
and the steps of a frame that belong to that camera alone: decode before the shared Segmenter, then depth,
tracking, publishing and recording after it, every output stamped with the camera's own input header.

The per-camera state and decisions live in ``robot_instseg.node.camera_stream`` (no rclpy); the node holds
one ``CameraIO`` per camera and one worker that batches their frames through one model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

import cv2
import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from robot_instseg.engine.errors import InputError
from robot_instseg.engine.frame_pipeline import FrameOutput
from robot_instseg.node.camera_stream import CameraStream
from robot_instseg.node.node_stats import cdr_stamp_ns
from robot_instseg.ros.compat import SubscriptionEventCallbacks
from robot_instseg.ros.convert import (
    image_from_msg,
    image_msg,
    instances_msg,
    labels_msg,
    markers_msg,
    points_msg,
    stamp_seconds,
)
from robot_instseg.ros.depth_input import DEPTH_OFF, DepthInput
from robot_instseg_msgs.msg import InstanceArray

OUTPUTS = {"instances": InstanceArray, "labels": Image, "debug_image": Image, "markers": MarkerArray,
           "points": PointCloud2}
_POLICIES = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}


@dataclass
class DecodedFrame:
    """A camera frame taken by the worker and decoded, waiting for its turn in the Segmenter."""

    msg: Any
    serialized: bytes
    image: np.ndarray
    order: str
    received_at: float
    received_ns: int


def offered_reliability(publisher_policies: list) -> Optional[str]:
    """What ``input_reliability: auto`` subscribes with, from the publishers' offered policies (rosbag2's rule):
    best_effort when any offers it (a reliable reader would never match it), reliable when all are reliable,
    None while no publisher is known."""
    if not publisher_policies:
        return None
    return "best_effort" if any(p == ReliabilityPolicy.BEST_EFFORT for p in publisher_policies) else "reliable"


class CameraIO:
    """Subscriptions and publishers of one camera; created at configure (publishers), subscribed at activate."""

    def __init__(self, node: Node, stream: CameraStream) -> None:
        """``node``: the SegNode (its ``settings``, ``recording`` and ``log_throttled``)."""
        self.node: Any = node
        self.stream = stream
        self.subscription = None
        self.depth: Optional[DepthInput] = None
        self.input_type: type = Image
        reliable = QoSProfile(depth=5)
        self.pubs = {name: node.create_publisher(kind, stream.topic(name), reliable) for name, kind in OUTPUTS.items()}

    def setting(self, name: str) -> Any:
        return self.stream.setting(self.node.settings, name)

    def _image_leaf(self) -> str:
        return "image/compressed" if self.setting("image_transport") == "compressed" else "image"

    @property
    def image_topic(self) -> str:
        sub = self.subscription
        return sub.topic_name if sub is not None else self.stream.topic(self._image_leaf())

    @property
    def instances_topic(self) -> str:
        return self.pubs["instances"].topic_name if self.pubs else self.stream.topic("instances")

    # -- lifecycle -----------------------------------------------------------------------------
    def subscribe(self, reliability: Optional[str] = None) -> None:
        """Subscribe to the camera with ``reliability`` (default: the parameter; ``auto`` starts reliable and
        follows what publishers offer, see ``follow_offered_qos``)."""
        wanted = self.setting("input_reliability")
        chosen = reliability or ("reliable" if wanted == "auto" else wanted)
        qos = QoSProfile(history=qos_profile_sensor_data.history, depth=int(self.setting("input_queue_depth")),
                         reliability=_POLICIES[chosen], durability=qos_profile_sensor_data.durability)
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos,
                                            message_lost=self._on_message_lost)
        leaf = self._image_leaf()
        self.input_type = CompressedImage if leaf == "image/compressed" else Image
        self.subscription = self.node.create_subscription(self.input_type, self.stream.topic(leaf), self._on_image,
                                                          qos, raw=True, event_callbacks=events)
        if self.setting("depth_mode") == "auto":
            self.depth = DepthInput(self.node, qos, self.stream.topic("depth"), self.stream.topic("camera_info"))
        self.stream.reliability = chosen
        if wanted != "auto":
            self.stream.reliability_why = "set"
        elif reliability is None:
            self.stream.reliability_why = "auto: reliable until a publisher is seen"
            self.follow_offered_qos()

    def unsubscribe(self) -> None:
        if self.subscription is not None:
            self.node.destroy_subscription(self.subscription)
            self.subscription = None
        depth, self.depth = self.depth, None
        if depth is not None:
            depth.destroy()

    def follow_offered_qos(self) -> None:
        """``input_reliability: auto``: re-subscribe when the camera's publishers offer another reliability than
        the subscription uses (called at subscribe and by the 1 Hz timer)."""
        sub = self.subscription
        if sub is None or self.setting("input_reliability") != "auto":
            return
        policies = [info.qos_profile.reliability for info in self.node.get_publishers_info_by_topic(sub.topic_name)]
        offered = offered_reliability(policies)
        if offered is None:
            return
        if offered != self.stream.reliability:
            topic = sub.topic_name
            self.unsubscribe()
            self.subscribe(offered)
            self.node.get_logger().info(f"{self.stream.label}: {topic} publishers offer {offered}; "
                                        f"input_reliability auto subscribed {offered}")
        self.stream.reliability_why = f"auto: {offered}, as {len(policies)} publisher(s) offer"

    def destroy(self) -> None:
        self.unsubscribe()
        for pub in self.pubs.values():
            self.node.destroy_publisher(pub)
        self.pubs = {}

    # -- callbacks (executor thread) -----------------------------------------------------------
    def _on_image(self, serialized: bytes) -> None:
        """Frames arrive serialized (raw=True): only the frames the worker takes are deserialized, and the
        recorder stores the bytes exactly as they came off the wire."""
        dropped = self.stream.mailbox.put((serialized, time.monotonic(), time.time_ns()))
        self.stream.stats.frame_received(dropped, cdr_stamp_ns(serialized))

    def _on_incompatible_qos(self, info) -> None:
        """A camera publisher this subscription cannot connect to (a best_effort camera, reliable input)."""
        policy = getattr(info.last_policy_kind, "name", str(info.last_policy_kind)).removeprefix("RMW_QOS_POLICY_")
        self.stream.stats.qos_incompatible_seen(policy)
        self.log("qos", f"a publisher on {self.image_topic} offers QoS incompatible with this subscription (policy "
                        f"{policy}, input_reliability {self.setting('input_reliability')}): its frames never arrive; "
                        "set input_reliability to best_effort or auto", error=True)

    def _on_message_lost(self, info) -> None:
        self.stream.stats.messages_lost(int(info.total_count_change))

    # -- the frame, before and after the shared Segmenter (worker thread) ----------------------
    def decode(self, serialized: bytes, received_at: float, received_ns: int) -> Optional[DecodedFrame]:
        """The frame as an image, or None when it is bad input (counted on this camera, logged, skipped)."""
        stats, topic = self.stream.stats, self.image_topic
        try:
            msg = deserialize_message(serialized, self.input_type)
        except Exception as exc:  # a message that is not a valid CDR Image is bad input, not a crash
            detail = f"frame on {topic} rejected: not a valid {self.input_type.__name__} message ({exc})"
            stats.frame_rejected("deserialize", detail)
            self.log("reject:deserialize", f"{detail}; frame skipped, node keeps running")
            return None
        try:
            image, order = image_from_msg(msg, int(self.node.settings["max_input_pixels"]))
        except InputError as exc:
            detail = (f"frame on {topic} (stamp {msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}, "
                      f"frame_id '{msg.header.frame_id}') rejected: {exc}")
            stats.frame_rejected(exc.reason, detail)
            self.log(f"reject:{exc.reason}", f"{detail}; frame skipped, node keeps running "
                                             f"({stats.rejected} rejected so far on this camera)")
            return None
        size = (int(image.shape[1]), int(image.shape[0]))
        previous = stats.frame_size_seen(size)
        if previous is not None:
            self.log("size", f"frame size on {topic} changed from {previous[0]}x{previous[1]} to "
                             f"{size[0]}x{size[1]}; segmenting at the new size")
        return DecodedFrame(msg, serialized, image, order, received_at, received_ns)

    def finish(self, frame: DecodedFrame, output: FrameOutput) -> None:
        """Depth, tracking and every output of one segmented frame, stamped with its own header."""
        settings, header, detections = self.node.settings, frame.msg.header, output.visible
        depth = self.depth
        fusion, depth_status = (None, DEPTH_OFF) if depth is None else \
            depth.frame_3d(header, detections, frame.received_at, settings, self.log, output.labels)
        # After depth: the tracker gates matches by 3D centroid where it has one.
        self.stream.tracking.assign(detections, stamp_seconds(header), settings,
                                    fusion.centroids() if fusion is not None else None, output.weak)
        instances = instances_msg(detections, header, fusion, depth_status)
        self.pubs["instances"].publish(instances)
        if settings["publish_labels"]:
            self.pubs["labels"].publish(labels_msg(output.labels, header))
        if settings["publish_markers"] and self.pubs["markers"].get_subscription_count() > 0:
            self.pubs["markers"].publish(markers_msg(detections, header, fusion=fusion))
        if fusion is not None and settings["publish_points"] and self.pubs["points"].get_subscription_count():
            self.pubs["points"].publish(points_msg(detections, fusion, header, int(settings["points_stride"])))
        if settings["publish_debug_image"] and self.pubs["debug_image"].get_subscription_count() > 0:
            self._publish_overlay(frame, output, fusion)
        self.stream.stats.frame_done((time.monotonic() - frame.received_at) * 1e3, output.result.times.total_ms,
                                     len(detections))
        recording = self.node.recording
        if recording is not None:
            paired = (depth.depth_topic, depth.last_depth) if depth is not None and depth.last_depth else None
            recording.on_frame(frame.msg, frame.serialized, frame.received_ns or time.time_ns(), instances,
                               self.image_topic, paired, camera=self.stream.name, instances_topic=self.instances_topic)

    def _publish_overlay(self, frame: DecodedFrame, output: FrameOutput, fusion) -> None:
        from robot_instseg.io.overlay import draw

        image = frame.image
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if frame.order == "bgr" and image.ndim == 3 else image
        captions = [f"{g.distance:.2f} m" if g is not None else "" for g in fusion.instances] if fusion else None
        self.pubs["debug_image"].publish(image_msg(draw(rgb, output.visible, labels=output.labels,
                                                        captions=captions), "rgb8", frame.msg.header))

    def log(self, key: str, text: str, error: bool = False) -> None:
        """At most one line per key per 5 s on this camera, prefixed with its name when there are several."""
        self.node.log_throttled(self.stream.throttle, key,
                                f"[{self.stream.name}] {text}" if self.stream.name else text, error)

