"""Subscribe to a running node's outputs and keep score: latency from camera stamp, rate,
instances per frame, diagnostics; optionally save overlay frames as PNG."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image

from robot_instseg.dataset.track_eval import persisting_boxes_with_id
from robot_instseg.ros.convert import stamp_seconds
from robot_instseg_msgs.msg import InstanceArray


class Watcher:
    """Subscribes to a node's outputs and keeps what arrived, for tools and tests."""

    def __init__(self, node: Node, node_fqn: str, overlay_dir: Optional[Path] = None, overlay_every_s: float = 3.0,
                 max_overlays: int = 4) -> None:
        self.node = node
        self.lock = threading.Lock()
        self.records: list[tuple[float, float, int]] = []  # (received wall time, latency ms, instances)
        self.distances: list[tuple[float, float]] = []  # (received wall time, metres) of each instance with 3D
        # Per InstanceArray: (received wall time, depth fused, instances persisting from the previous array (box
        # IoU > track_eval.PERSISTING_IOU, alternative readings left out), those of them with a track id): eval --track's
        # track coverage, live.
        self.coverage_records: list[tuple[float, bool, int, int]] = []
        self._last_boxes = np.zeros((0, 4))
        self.diagnostic = None
        self.statuses: dict = {}  # every status on /diagnostics by name, newest (a camera's: "<node>: <camera>")
        self.overlay_dir = overlay_dir
        self.overlays: list[Path] = []
        self.overlay_every_s, self.max_overlays = overlay_every_s, max_overlays
        self._last_overlay = 0.0
        qos = QoSProfile(depth=10)
        node.create_subscription(InstanceArray, f"{node_fqn}/instances", self._on_instances, qos)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, qos)
        if overlay_dir is not None:
            node.create_subscription(Image, f"{node_fqn}/debug_image", self._on_overlay, qos)

    def _on_instances(self, msg: InstanceArray) -> None:
        now = time.time()
        with self.lock:
            self.records.append((now, (now - stamp_seconds(msg.header)) * 1e3, len(msg.instances)))
            self.distances.extend((now, float(np.linalg.norm((i.centroid.x, i.centroid.y, i.centroid.z))))
                                  for i in msg.instances if i.has_3d)
            boxes = np.array([[i.bbox.x_offset, i.bbox.y_offset, i.bbox.x_offset + i.bbox.width,
                               i.bbox.y_offset + i.bbox.height] for i in msg.instances if not i.same_object_as],
                             np.float64).reshape(-1, 4)
            ids = np.array([i.track_id for i in msg.instances if not i.same_object_as], np.int64)
            persisting, named = persisting_boxes_with_id(self._last_boxes, boxes, ids)
            self._last_boxes = boxes
            self.coverage_records.append((now, msg.depth_status == "", persisting, named))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.statuses[status.name] = status
            if status.name.endswith(": segmentation"):
                self.diagnostic = status

    def _on_overlay(self, msg: Image) -> None:
        now = time.monotonic()
        if len(self.overlays) >= self.max_overlays or now - self._last_overlay < self.overlay_every_s:
            return
        self._last_overlay = now
        rgb = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)[:, :msg.width * 3]
        path = self.overlay_dir / f"overlay_{len(self.overlays):02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(rgb.reshape(msg.height, msg.width, 3), cv2.COLOR_RGB2BGR))
        self.overlays.append(path)

    def diagnostic_values(self, name: str = "") -> dict:
        """The key/values of the node's status, or of the status called ``name``."""
        status = self.statuses.get(name) if name else self.diagnostic
        return {kv.key: kv.value for kv in status.values} if status is not None else {}

    def distances_since(self, since: float) -> np.ndarray:
        """Camera-to-centroid distances (m) of the instances with 3D received after wall time ``since``."""
        with self.lock:
            return np.array([d for t, d in self.distances if t >= since])

    def window(self, since: float) -> tuple[int, np.ndarray, np.ndarray]:
        """(frames, latencies ms, instance counts) received after wall time ``since``."""
        with self.lock:
            rows = [r for r in self.records if r[0] >= since]
        return len(rows), np.array([r[1] for r in rows]), np.array([r[2] for r in rows])

    def coverage(self, since: float) -> dict:
        """After wall time ``since``: the share of frames whose depth was fused (depth_status "") and of the
        instances that persist from the previous frame with a track id (0 = none yet), with their counts."""
        with self.lock:
            rows = [r for r in self.coverage_records if r[0] >= since]
        with_depth, instances, named = sum(r[1] for r in rows), sum(r[2] for r in rows), sum(r[3] for r in rows)
        return {"frames": len(rows), "frames_with_depth": with_depth,
                "depth_share": round(with_depth / len(rows), 4) if rows else 0.0,
                "persisting_instances": instances, "persisting_with_id": named,
                "id_share": round(named / instances, 4) if instances else 0.0}
