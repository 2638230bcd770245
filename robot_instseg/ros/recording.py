"""Recording inside the node: parameters -> CapturePolicy + Recorder, services, CameraInfo.

Each segmented frame is offered to ``on_frame`` from the worker thread: the policy decides
(cheap), and a capture holds references to the received messages; they are serialized by the
recorder's own thread, so the inference path never waits for serialization or disk.
Services: ``~/capture`` (std_srvs/Trigger) records the last segmented frame now;
``~/record`` (std_srvs/SetBool) records every frame until set false, whatever the mode.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any, Optional

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.qos import qos_profile_sensor_data
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage
from std_srvs.srv import SetBool, Trigger

import robot_instseg
from robot_instseg.engine.model_paths import model_sha256
from robot_instseg.node.depth_pairing import with_stamp_or_newest
from robot_instseg.recording.msg_types import CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, INSTANCE_ARRAY
from robot_instseg.recording.policy import CapturePolicy, PolicyConfig
from robot_instseg.recording.recorder import BUDGET_REACHED, FAILED, RECORDING, Capture, Recorder, RecorderConfig
from robot_instseg.ros.convert import stamp_ns

RECORDER_KEYS = ("record_dir", "record_storage", "record_budget_mb", "record_split_mb", "record_split_s")


def default_record_dir() -> Path:
    """$ROS_HOME/robot_instseg/bags, ROS_HOME defaulting to ~/.ros."""
    return Path(os.environ.get("ROS_HOME") or Path.home() / ".ros") / "robot_instseg" / "bags"


def policy_config(settings: dict[str, Any]) -> PolicyConfig:
    """The policy the parameters describe; ValueError (with the reason) when they disagree."""
    return PolicyConfig(mode=settings["record_mode"], interval_s=settings["record_interval_s"],
                        score_low=settings["record_score_low"], score_high=settings["record_score_high"],
                        unseen_class_s=settings["record_unseen_class_s"], max_rate_hz=settings["record_max_rate_hz"])




class NodeRecording:
    """The recording side of SegNode; created at configure, started at activate."""

    def __init__(self, node, segmenter) -> None:
        self.node = node
        self.policy = CapturePolicy(policy_config(node.settings))
        self.recorder: Optional[Recorder] = None
        self._lock = threading.Lock()
        # Per camera ("" = the single one): (frame msg, its bytes, received ns, InstanceArray, frame topic, depth,
        # camera, instances topic) of its last segmented frame, and its recent CameraInfos by subscription.
        self._last: dict[str, tuple] = {}
        self._camera_infos: dict[str, deque] = {}
        self._camera_info_subs: dict[str, Any] = {}
        self._retiring: list[threading.Thread] = []  # recorders replaced by a parameter change, closing
        path = Path(segmenter.model_path)
        self.custom_data = {
            "robot_instseg.version": robot_instseg.__version__,
            "robot_instseg.node": node.get_fully_qualified_name(),
            "robot_instseg.model": str(path),
            "robot_instseg.model_sha256": model_sha256(path),
            "robot_instseg.decoder": segmenter.decoder.name,
            "robot_instseg.classes": json.dumps(list(segmenter.class_names)),
        }
        self._services = [node.create_service(Trigger, "~/capture", self._on_capture),
                          node.create_service(SetBool, "~/record", self._on_record)]

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, camera_info_topics: Optional[dict[str, str]] = None) -> None:
        """Start recording; ``camera_info_topics`` maps each camera to its CameraInfo topic (recorded with it)."""
        node = self.node
        for camera, topic in (camera_info_topics or {"": "~/camera_info"}).items():
            infos: deque = deque(maxlen=30)
            self._camera_infos[camera] = infos
            self._camera_info_subs[camera] = node.create_subscription(
                CameraInfo, topic, lambda msg, infos=infos: infos.append((stamp_ns(msg.header), msg)),
                qos_profile_sensor_data)
        self._start_recorder()

    @property
    def _started(self) -> bool:
        return bool(self._camera_info_subs)

    def stop(self) -> None:
        for sub in self._camera_info_subs.values():
            self.node.destroy_subscription(sub)
        self._camera_info_subs = {}
        with self._lock:
            recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.stop()
        for thread in self._retiring:
            thread.join(timeout=10.0)
        self._retiring = []

    def destroy(self) -> None:
        self.stop()
        for service in self._services:
            self.node.destroy_service(service)
        self._services = []

    def _start_recorder(self) -> None:
        s = self.node.settings
        directory = Path(s["record_dir"]).expanduser() if s["record_dir"] else default_record_dir()
        name = self.node.get_fully_qualified_name()
        config = RecorderConfig(
            directory=directory, storage=s["record_storage"], prefix=self.node.get_name(),
            reason_topic=f"{name}/capture_reason", split_bytes=int(s["record_split_mb"] * 2**20),
            split_s=float(s["record_split_s"]), budget_bytes=int(s["record_budget_mb"] * 2**20),
            custom_data=self.custom_data)
        recorder = Recorder(config, self._log_event)
        recorder.start()
        with self._lock:
            old, self.recorder = self.recorder, recorder
        if old is not None:  # close the previous bag without holding up the executor
            thread = threading.Thread(target=old.stop, name="recorder_close", daemon=True)
            thread.start()
            self._retiring = [t for t in self._retiring if t.is_alive()] + [thread]

    def _log_event(self, level: str, text: str) -> None:
        logger = self.node.get_logger()
        {"info": logger.info, "warn": logger.warning, "error": logger.error}.get(level, logger.info)(text)

    # -- parameters ----------------------------------------------------------------------------
    @staticmethod
    def check(settings: dict[str, Any]) -> Optional[str]:
        try:
            policy_config(settings)
        except ValueError as exc:
            return str(exc)
        return None

    def apply(self, changed: set[str]) -> None:
        """Parameters changed (already validated): new policy; new recorder (new bag) if needed."""
        if not any(name.startswith("record_") for name in changed):
            return
        continuous = self.policy.continuous
        self.policy = CapturePolicy(policy_config(self.node.settings))
        self.policy.continuous = continuous
        if changed & set(RECORDER_KEYS) and self._started:
            self._start_recorder()

    # -- frames (worker thread) ----------------------------------------------------------------
    def on_frame(self, msg, serialized: bytes, received_ns: int, instances, topic: str,
                 depth: Optional[tuple[str, Any]] = None, camera: str = "", instances_topic: str = "") -> None:
        """A segmented frame of ``camera``: ``serialized`` is the frame exactly as it arrived, ``msg`` its
        decoding, ``depth`` (topic, Image) the depth frame paired with it, recorded with it under that camera's
        topics (``instances_topic``: where its InstanceArray was published)."""
        stamp = msg.header.stamp
        stamp_s = stamp.sec + stamp.nanosec * 1e-9
        last = (msg, serialized, received_ns, instances, topic, depth, camera,
                instances_topic or self.node.instances_topic)
        with self._lock:
            self._last[camera] = last
        reason = self.policy.decide(stamp_s, [i.score for i in instances.instances],
                                    [i.class_name for i in instances.instances])
        if reason is not None:
            self._submit(last, reason, others=bool(self.node.settings["record_all_cameras"]))

    def _messages(self, last: tuple) -> list:
        """One camera's frame as recorded: the image as it arrived, its depth, its CameraInfo and its InstanceArray,
        each under that camera's topic."""
        msg, serialized, _, instances, topic, depth, camera, instances_topic = last
        frame_type = COMPRESSED_IMAGE if isinstance(msg, CompressedImage) else IMAGE
        messages = [(topic, frame_type, serialized)]
        if depth is not None:
            depth_topic, depth_msg = depth
            messages.append((depth_topic, IMAGE, lambda m=depth_msg: serialize_message(m)))
        info_sub = self._camera_info_subs.get(camera)
        info = with_stamp_or_newest(self._camera_infos.get(camera, ()), stamp_ns(msg.header))
        if info is not None and info_sub is not None:
            messages.append((info_sub.topic_name, CAMERA_INFO, lambda m=info: serialize_message(m)))
        messages.append((instances_topic, INSTANCE_ARRAY, lambda m=instances: serialize_message(m)))
        return messages

    def _submit(self, last: tuple, reason: str, others: bool = False) -> bool:
        """Capture ``last`` (one camera's frame); with ``others``, the newest segmented frame of every other camera
        too, in the same capture (record_all_cameras: multi-view annotation)."""
        recorder = self.recorder
        if recorder is None:
            return False
        messages = self._messages(last)
        if others:
            with self._lock:
                rest = [other for camera, other in self._last.items() if camera != last[6]]
            for other in rest:
                messages += self._messages(other)
        stamp = last[0].header.stamp
        return recorder.submit(Capture(last[2], (stamp.sec, stamp.nanosec), reason, messages))

    # -- services ------------------------------------------------------------------------------
    def _on_capture(self, request, response):
        """Record the last segmented frame of every camera now."""
        with self._lock:
            lasts = list(self._last.values())
        if not lasts:
            response.success, response.message = False, "no frame segmented yet; nothing to capture"
            return response
        captured = []
        for last in lasts:
            msg, topic = last[0], last[4]
            stamp = msg.header.stamp
            self.policy.manual_capture(stamp.sec + stamp.nanosec * 1e-9)
            if self._submit(last, "manual_capture"):
                captured.append(f"frame {stamp.sec}.{stamp.nanosec:09d} of {topic}")
        response.success = len(captured) == len(lasts)
        response.message = f"captured {', '.join(captured)}" if response.success else \
            f"not captured: {self.status_message()}"
        return response

    def _on_record(self, request, response):
        recorder = self.recorder
        if request.data and (recorder is None or not recorder.active) and self._started:
            self._start_recorder()  # after a stop (budget, failure) an explicit request retries
        self.policy.continuous = bool(request.data)
        response.success = True
        response.message = "recording every frame" if request.data else \
            f"continuous recording off (mode {self.node.settings['record_mode']})"
        self.node.get_logger().info(f"~/record: {response.message}")
        return response

    # -- diagnostics ---------------------------------------------------------------------------
    def status_message(self) -> str:
        recorder = self.recorder
        return recorder.status().message if recorder is not None else "recorder not running (node inactive)"

    def diagnostic(self) -> DiagnosticStatus:
        recorder = self.recorder
        status = recorder.status() if recorder is not None else None
        s = self.node.settings
        level, message = DiagnosticStatus.OK, "not recording (node inactive)"
        if status is not None:
            message = status.message
            if status.state == RECORDING:
                message = (f"record_mode {s['record_mode']}{', ~/record on' if self.policy.continuous else ''}: "
                           f"{status.captures_written} frames in {len(status.bags)} bag(s) in {self.recorder.config.directory}")
            if status.state == FAILED:
                level = DiagnosticStatus.ERROR
            elif status.state == BUDGET_REACHED or status.captures_dropped:
                level = DiagnosticStatus.WARN
                if status.state != BUDGET_REACHED:
                    message += f"; {status.captures_dropped} captures dropped (disk slower than captures)"
        values = {"mode": s["record_mode"], "continuous": str(self.policy.continuous).lower(),
                  "state": status.state if status else "inactive",
                  "captures_written": str(status.captures_written if status else 0),
                  "captures_dropped": str(status.captures_dropped if status else 0),
                  "bytes_written": str(status.bytes_written if status else 0),
                  "current_bag": status.bags[-1] if status and status.bags else "",
                  "bags": str(len(status.bags)) if status else "0"}
        for reason, count in sorted((status.by_reason if status else {}).items()):
            values[f"captured_{reason}"] = str(count)
        return DiagnosticStatus(level=level, name=f"{self.node.get_fully_qualified_name()}: recording",
                                message=message, hardware_id="disk",
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])
