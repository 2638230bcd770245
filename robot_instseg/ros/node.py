"""The robot_instseg node (entry point ``seg_node``): a managed (lifecycle) node.

configure  loads the model and warms it up, creates the publishers
activate   subscribes to the camera and starts the one worker thread
deactivate unsubscribes and stops the worker (no CPU is used while inactive)
cleanup    frees the model and the publishers

With ``autostart`` (the default) it configures and activates itself, so ``ros2 run`` and
``ros2 launch`` need no lifecycle manager. The image callback only stores the newest frame
in a one-slot mailbox; the worker decodes, segments and publishes, every output stamped
with the input header. Bad frames are counted, logged (rate-limited) and skipped.

At about 420 lines this module is longer than the others on purpose: it is one class whose
lifecycle transitions, callbacks and worker share the node's state (publishers, settings,
mailbox, model). Every decision that needs no rclpy lives in ``robot_instseg.node`` and
``robot_instseg.engine`` and is unit-tested there; what remains here is wiring.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from robot_instseg.engine.class_names import parse_class_filter
from robot_instseg.engine.errors import InputError
from robot_instseg.engine.frame_pipeline import segment_frame
from robot_instseg.node.diagnostics import depth_values, diagnostic_values, node_health
from robot_instseg.node.frame_mailbox import FrameMailbox
from robot_instseg.node.node_stats import ERROR, OK, WARN, LogThrottle, NodeStats, cdr_stamp_ns
from robot_instseg.node.params import PARAMS_BY_NAME
from robot_instseg.node.tracking import NodeTracking, weak_score_threshold
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
from robot_instseg.ros.parameters import declare_all, validate_update
from robot_instseg.ros.recording import NodeRecording
from robot_instseg_msgs.msg import InstanceArray

_LEVELS = {OK: DiagnosticStatus.OK, WARN: DiagnosticStatus.WARN, ERROR: DiagnosticStatus.ERROR}
# Node parameter -> Segmenter.update keyword, for the ones that change while running.
_SEGMENTER_KEYS = {"score_threshold": "score_threshold", "nms_iou_threshold": "iou_threshold",
                   "mask_threshold": "mask_threshold", "max_detections": "max_detections"}
_WEAK_KEYS = {"tracking", "track_low_score"}  # decide the Segmenter's weak_score_threshold


class SegNode(LifecycleNode):
    """The segmentation node: camera in, instances, labels, overlay and diagnostics out."""

    def __init__(self, name: str = "seg_node", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.stats = NodeStats()
        self.throttle = LogThrottle(5.0)
        self.param_problems: list[str] = []
        self.settings = declare_all(self, self.param_problems)
        for problem in self.param_problems:
            self.get_logger().error(f"parameter refused, default used instead: {problem}")
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.segmenter = None
        self.recording: Optional[NodeRecording] = None
        self.tracking: Optional[NodeTracking] = None
        self.model_path = ""
        self.model_error = ""
        self.state_label = "unconfigured"
        self.mailbox: FrameMailbox = FrameMailbox()
        self._stop = threading.Event()
        self._wake = threading.Event()  # set on stop and on any parameter change: the worker re-reads them
        self._worker_restarts = 0
        self._worker: Optional[threading.Thread] = None
        self._subscription = None
        self.depth: Optional[DepthInput] = None
        self._input_type = Image
        self._pubs: dict[str, Any] = {}
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(1.0, self.publish_diagnostics)
        self._autostart_timer = self.create_timer(0.01, self._autostart) if self.settings["autostart"] else None

    # -- lifecycle ---------------------------------------------------------------------------
    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        from robot_instseg.engine.backends import BackendConfig, parse_providers
        from robot_instseg.engine.model_paths import default_model_path
        from robot_instseg.engine.segmenter import Segmenter, SegmenterConfig

        s = self.settings
        try:
            path = Path(s["model_path"]) if s["model_path"] else default_model_path()
            self.model_path = str(path)
            runtime = BackendConfig(backend=s["backend"], providers=parse_providers(s["providers"]),
                                    device_id=s["device_id"], fp16=s["fp16"],
                                    engine_cache_dir=s["engine_cache_dir"] or None, num_threads=s["num_threads"])
            config = SegmenterConfig(model_format=s["model_format"], labels_path=s["labels_path"] or None,
                                     runtime=runtime, pipeline=s["pipeline"], score_threshold=s["score_threshold"],
                                     iou_threshold=s["nms_iou_threshold"], mask_threshold=s["mask_threshold"],
                                     max_detections=s["max_detections"],
                                     class_filter=parse_class_filter(s["class_filter"]),
                                     weak_score_threshold=weak_score_threshold(s))
            self.segmenter = Segmenter(path, config)
        except Exception as exc:  # a missing or broken model must not take the node down
            self.model_error = f"{self.model_path or s['model_path']}: {exc}"
            self.get_logger().error(f"configure failed, node stays unconfigured: model {self.model_error}")
            self.segmenter = None
            return TransitionCallbackReturn.FAILURE
        self.model_error = ""
        reliable = QoSProfile(depth=5)
        self._pubs = {"instances": self.create_publisher(InstanceArray, "~/instances", reliable),
                      "labels": self.create_publisher(Image, "~/labels", reliable),
                      "debug_image": self.create_publisher(Image, "~/debug_image", reliable),
                      "markers": self.create_publisher(MarkerArray, "~/markers", reliable),
                      "points": self.create_publisher(PointCloud2, "~/points", reliable)}
        self.recording = NodeRecording(self, self.segmenter)
        self.tracking = NodeTracking(self.settings)
        self.state_label = "inactive"
        self.get_logger().info(f"configured: {self.segmenter.model_path} ({self.segmenter.decoder.name}, "
                               f"{len(self.segmenter.class_names)} classes, {self.segmenter.backend.description}, "
                               f"{self.segmenter.pipeline_device} pipeline)")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        s = self.settings
        qos = QoSProfile(history=qos_profile_sensor_data.history, depth=int(s["input_queue_depth"]),
                         reliability=ReliabilityPolicy.RELIABLE if s["input_reliability"] == "reliable"
                         else ReliabilityPolicy.BEST_EFFORT,
                         durability=qos_profile_sensor_data.durability)
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos,
                                            message_lost=self._on_message_lost)
        if s["image_transport"] == "compressed":
            self._input_type = CompressedImage
            self._subscription = self.create_subscription(CompressedImage, "~/image/compressed", self._on_image, qos,
                                                          raw=True, event_callbacks=events)
        else:
            self._input_type = Image
            self._subscription = self.create_subscription(Image, "~/image", self._on_image, qos, raw=True,
                                                          event_callbacks=events)
        if s["depth_mode"] == "auto":
            self.depth = DepthInput(self, qos)
        self.mailbox.reopen()
        if self.recording is not None:
            self.recording.start()
        self._stop.clear()
        self._worker_restarts = 0
        self.stats.mark_started()
        self._start_worker()
        self.state_label = "active"
        self.get_logger().info(f"active: segmenting {self._subscription.topic_name} "
                               f"({s['image_transport']}, {s['input_reliability']})")
        return TransitionCallbackReturn.SUCCESS

    def _start_worker(self) -> None:
        self._worker = threading.Thread(target=self._work, name="seg_worker", daemon=True)
        self._worker.start()

    def _stop_work(self) -> None:
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
            self._subscription = None
        depth, self.depth = self.depth, None
        if depth is not None:
            depth.destroy()
        self._stop.set()
        self._wake.set()
        self.mailbox.close()
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            self._worker = None
        self.mailbox.clear()
        if self.recording is not None:
            self.recording.stop()  # closes the bag cleanly (SIGINT / SIGTERM come through here too)

    def _release_model(self) -> None:
        if self.recording is not None:
            self.recording.destroy()
            self.recording = None
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        self._pubs = {}
        self.segmenter = None

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_work()
        self.state_label = "inactive"
        self.get_logger().info("inactive: unsubscribed, worker stopped")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release_model()
        self.state_label = "unconfigured"
        self.get_logger().info("cleaned up: model released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_work()
        self._release_model()
        self.state_label = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_work()
        self._release_model()
        self.state_label = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    # -- parameters --------------------------------------------------------------------------
    def _on_set_parameters(self, parameters):
        result = validate_update(parameters)
        if not result.successful:
            return result
        changes = {p.name: p.value for p in parameters if p.name in self.settings}
        problem = NodeRecording.check({**self.settings, **changes})
        if problem:
            result.successful, result.reason = False, problem
            return result
        segmenter = self.segmenter
        update = {_SEGMENTER_KEYS[k]: v for k, v in changes.items() if k in _SEGMENTER_KEYS}
        if "class_filter" in changes:
            update["class_filter"] = parse_class_filter(changes["class_filter"])
        if _WEAK_KEYS & set(changes):
            update["weak_score_threshold"] = weak_score_threshold({**self.settings, **changes})
        if segmenter is not None and update:
            try:
                segmenter.update(**update)
            except ValueError as exc:
                result.successful, result.reason = False, str(exc)
                return result
        self.settings.update(changes)
        self._wake.set()  # a worker waiting out a max_rate_hz interval re-reads the new value at once
        if self.recording is not None:
            self.recording.apply(set(changes))
        if self.tracking is not None:
            self.tracking.apply(self.settings)
        later = [k for k in changes if not PARAMS_BY_NAME[k].dynamic]
        if later:
            self.get_logger().info(f"{', '.join(later)} changed: applies at the next configure")
        return result

    # -- frames ------------------------------------------------------------------------------
    def _on_image(self, serialized: bytes) -> None:
        """Frames arrive serialized (raw=True): only the frames the worker takes are deserialized,
        and the recorder stores the bytes exactly as they came off the wire."""
        dropped = self.mailbox.put((serialized, time.monotonic(), time.time_ns()))
        self.stats.frame_received(dropped, cdr_stamp_ns(serialized))

    def _on_incompatible_qos(self, info) -> None:
        """A camera publisher this subscription cannot connect to (e.g. best_effort camera, reliable input)."""
        policy = getattr(info.last_policy_kind, "name", str(info.last_policy_kind)).removeprefix("RMW_QOS_POLICY_")
        self.stats.qos_incompatible_seen(policy)
        self._log_throttled("qos", f"a publisher on the image topic offers QoS incompatible with this subscription "
                            f"(policy {policy}, input_reliability {self.settings['input_reliability']}): its frames "
                            "never arrive; set input_reliability to best_effort", error=True)

    def _on_message_lost(self, info) -> None:
        """Frames the middleware knows it lost before delivering them."""
        self.stats.messages_lost(int(info.total_count_change))

    def _work(self) -> None:
        """The one worker: nothing one frame does, and no parameter value, ends this loop."""
        taken_at: Optional[float] = None
        while not self._stop.is_set():
            try:
                rate = float(self.settings["max_rate_hz"])
                wait = (taken_at + 1.0 / rate - time.monotonic()) if rate > 0 and taken_at is not None else 0.0
                if wait > 0:
                    # Wait BEFORE taking, so the newest frame is taken; a parameter change or stop wakes it.
                    self._wake.wait(min(wait, 0.5))
                    self._wake.clear()
                    continue
                item = self.mailbox.take(timeout=0.2)
                if item is None:
                    continue
                taken_at = time.monotonic()
                self.process(*item)
            except Exception as exc:  # an internal error: counted, logged, and the loop goes on
                detail = f"{type(exc).__name__}: {exc}"
                self.stats.inference_failed(detail)
                self._log_throttled("internal", f"frame failed with an internal error ({detail}); frame skipped, "
                                    "node keeps running", error=True)

    @property
    def instances_topic(self) -> str:
        pub = self._pubs.get("instances")
        return pub.topic_name if pub is not None else f"{self.get_fully_qualified_name()}/instances"

    def process(self, serialized: bytes, received_at: float, received_ns: int = 0) -> None:
        segmenter = self.segmenter
        if segmenter is None:
            return
        topic = self._subscription.topic_name if self._subscription is not None else "~/image"
        try:
            msg = deserialize_message(serialized, self._input_type)
        except Exception as exc:  # a message that is not a valid CDR Image is bad input, not a crash
            detail = f"frame on {topic} rejected: not a valid {self._input_type.__name__} message ({exc})"
            self.stats.frame_rejected("deserialize", detail)
            self._log_throttled("reject:deserialize", f"{detail}; frame skipped, node keeps running")
            return
        try:
            image, order = image_from_msg(msg, int(self.settings["max_input_pixels"]))
        except InputError as exc:
            reason = exc.reason
            detail = (f"frame on {topic} (stamp {msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}, "
                      f"frame_id '{msg.header.frame_id}') rejected: {exc}")
            self.stats.frame_rejected(reason, detail)
            self._log_throttled(f"reject:{reason}", f"{detail}; frame skipped, node keeps running "
                                f"({self.stats.rejected} rejected so far)")
            return
        size = (int(image.shape[1]), int(image.shape[0]))
        previous = self.stats.frame_size_seen(size)
        if previous is not None:
            self._log_throttled("size", f"frame size on {topic} changed from {previous[0]}x{previous[1]} to "
                                f"{size[0]}x{size[1]}; segmenting at the new size")
        output = segment_frame(segmenter, image, order)
        result, labels, detections = output.result, output.labels, output.visible
        header = msg.header
        depth = self.depth
        fusion, depth_status = (None, DEPTH_OFF) if depth is None else \
            depth.frame_3d(header, detections, received_at, self.settings, self._log_throttled)
        tracking = self.tracking  # after depth: the tracker gates matches by 3D centroid where it has one
        if tracking is not None:
            tracking.assign(detections, stamp_seconds(header), self.settings,
                            fusion.centroids() if fusion is not None else None, output.weak)
        instances = instances_msg(detections, header, fusion, depth_status)
        self._pubs["instances"].publish(instances)
        if self.settings["publish_labels"]:
            self._pubs["labels"].publish(labels_msg(labels, header))
        if self.settings["publish_markers"]:
            self._pubs["markers"].publish(markers_msg(detections, header, fusion=fusion))
        if fusion is not None and self.settings["publish_points"] and self._pubs["points"].get_subscription_count():
            self._pubs["points"].publish(points_msg(detections, fusion, header,
                                                    int(self.settings["points_stride"])))
        if self.settings["publish_debug_image"] and self._pubs["debug_image"].get_subscription_count() > 0:
            from robot_instseg.io.overlay import draw

            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if order == "bgr" and image.ndim == 3 else image
            captions = [f"{g.distance:.2f} m" if g is not None else "" for g in fusion.instances] if fusion else None
            self._pubs["debug_image"].publish(image_msg(draw(rgb, detections, labels=labels, captions=captions),
                                                        "rgb8", header))
        self.stats.frame_done((time.monotonic() - received_at) * 1e3, result.times.total_ms, len(detections))
        recording = self.recording
        if recording is not None:
            depth = self.depth
            paired = (depth.depth_topic, depth.last_depth) if depth is not None and depth.last_depth else None
            recording.on_frame(msg, serialized, received_ns or time.time_ns(), instances, topic, paired)

    def _log_throttled(self, key: str, text: str, error: bool = False) -> None:
        """At most one line per key per 5 s. Never raises: the worker's error path goes through here.

        rclpy refuses one call site logging at two severities ("Logger severity cannot be
        changed between calls"), so each severity has its own call.
        """
        try:
            held = self.throttle.allow(key)
            if held is None:
                return
            line = text + (f" [{held} similar suppressed]" if held else "")
            if error:
                self.get_logger().error(line)
            else:
                self.get_logger().warning(line)
        except Exception:  # noqa: BLE001 - a log line is never worth the worker
            pass

    def _watch_worker(self) -> None:
        """Run by the 1 Hz diagnostics timer: a dead worker while active is restarted once."""
        worker = self._worker
        if self.state_label != "active" or worker is None or worker.is_alive() or self._stop.is_set():
            return
        if self._worker_restarts >= 1:
            return
        self._worker_restarts += 1
        self.stats.worker_restarted()
        self._log_throttled("worker", "the segmentation worker died; restarted it (once)", error=True)
        self._start_worker()

    # -- diagnostics -------------------------------------------------------------------------
    def publish_diagnostics(self) -> None:
        """Run by the 1 Hz timer: restart a dead worker (once), then publish the node's and the recorder's status."""
        self._watch_worker()
        snap = self.stats.snapshot()
        worker = self._worker
        alive = worker is not None and worker.is_alive()
        verdict = node_health(self.state_label, snap, self.model_error, alive,
                              float(self.settings["stall_timeout_s"]), self.param_problems)
        level, message = verdict.level, verdict.message
        segmenter = self.segmenter
        values = diagnostic_values(snap, self.state_label, self.model_path,
                                   f"{segmenter.backend.description}, {segmenter.pipeline_device} pipeline"
                                   if segmenter else "",
                                   segmenter.decoder.name if segmenter else "", self.param_problems, alive)
        if self.tracking is not None:
            decoding_weak = segmenter is not None and segmenter.weak_below is not None  # the Segmenter decides
            values.update(self.tracking.diagnostic_values(segmenter.settings.score_threshold if decoding_weak else None))
        depth = self.depth
        if depth is not None:
            depth_snap = depth.counts.snapshot()
            values.update(depth_values(depth_snap))
            if level == OK and depth_snap["failing"]:
                level, message = WARN, f"depth arrives but gives no 3D: {depth_snap['last_problem']}"
        status = DiagnosticStatus(level=_LEVELS[level], name=f"{self.get_fully_qualified_name()}: segmentation",
                                  message=message, hardware_id=values["backend"] or "none",
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        recording = self.recording
        if recording is not None:
            array.status.append(recording.diagnostic())
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(array)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``seg_node``: spin until shut down, then stop the worker and release ROS."""
    rclpy.init(args=list(argv) if argv is not None else sys.argv)
    node = SegNode()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node._stop_work()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
