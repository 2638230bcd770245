"""The robot_instseg node (entry point ``seg_node``): a managed node serving one or more cameras, one model.

configure  loads the model once and warms it up, creates every camera's publishers
activate   subscribes to every camera and starts the one worker thread
deactivate unsubscribes and stops the worker (no CPU is used while inactive)
cleanup    frees the model and the publishers

With ``autostart`` (the default) it configures and activates itself, so ``ros2 run`` and
``ros2 launch`` need no lifecycle manager. Each camera's image callback only stores its newest
frame in that camera's one-slot mailbox; the worker takes, in fair turns, the newest frame of every
camera that has one, segments them as one batch when the model allows, and hands each result back
to its camera for depth, tracking and publishing, every output stamped with that camera's input
header. Bad frames are counted on their camera, logged (rate-limited) and skipped.

Decisions that need no rclpy live in ``robot_instseg.node`` (per camera: ``camera_stream``) and ``engine``,
unit-tested there; one camera's wiring is ``ros.camera_io``; here: lifecycle, worker, diagnostics.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from robot_instseg.engine.class_names import parse_class_filter
from robot_instseg.engine.frame_pipeline import segment_frames
from robot_instseg.node.camera_stream import CameraStream, FairTurns, effective_max_batch
from robot_instseg.node.diagnostics import camera_values, depth_values, diagnostic_values, node_health, worst
from robot_instseg.node.node_stats import ERROR, OK, WARN, Health, LogThrottle, NodeStats
from robot_instseg.node.params import spec_for
from robot_instseg.node.tracking import weak_score_threshold
from robot_instseg.ros.camera_io import CameraIO, DecodedFrame
from robot_instseg.ros.compat import spin_until_shutdown
from robot_instseg.ros.parameters import declare_all, validate_update
from robot_instseg.ros.recording import NodeRecording

_LEVELS = {OK: DiagnosticStatus.OK, WARN: DiagnosticStatus.WARN, ERROR: DiagnosticStatus.ERROR}
# Node parameter -> Segmenter.update keyword, for the ones that change while running.
_SEGMENTER_KEYS = {"score_threshold": "score_threshold", "nms_iou_threshold": "iou_threshold",
                   "mask_threshold": "mask_threshold", "max_detections": "max_detections"}
_WEAK_KEYS = {"tracking", "track_low_score"}  # decide the Segmenter's weak_score_threshold


class SegNode(LifecycleNode):
    """The segmentation node: cameras in; instances, labels, overlay and diagnostics out per camera."""

    def __init__(self, name: str = "seg_node", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.throttle = LogThrottle(5.0)
        self.param_problems: list[str] = []
        self.settings = declare_all(self, self.param_problems)
        for problem in self.param_problems:
            self.get_logger().error(f"parameter refused, default used instead: {problem}")
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.segmenter = None
        self.recording: Optional[NodeRecording] = None
        self.model_path = ""
        self.model_error = ""
        self.state_label = "unconfigured"
        self._arrived = threading.Event()  # set by every camera's callback, and on stop / parameter changes
        self.streams = [CameraStream(camera, self.settings, on_frame=self._arrived.set)
                        for camera in self.settings["cameras"] or [""]]
        self.cameras: list[CameraIO] = []
        self._camera_of: dict[int, CameraIO] = {}  # id(stream) -> its CameraIO, while configured
        self._turns = FairTurns()
        self.batch_sizes: collections.Counter = collections.Counter()  # frames per session.run, as seen
        self._stop = threading.Event()
        self._worker_restarts = 0
        self._worker_errors = NodeStats()  # internal errors that belong to no camera
        self._worker: Optional[threading.Thread] = None
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
                                    engine_cache_dir=s["engine_cache_dir"] or None, num_threads=s["num_threads"],
                                    spin_wait=s["cpu_spin_wait"])
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
        self.cameras = [CameraIO(self, stream) for stream in self.streams]
        self._camera_of = {id(camera.stream): camera for camera in self.cameras}
        self.recording = NodeRecording(self, self.segmenter)
        for stream in self.streams:
            stream.tracking.apply(self.settings)
            stream.tracking.tracker.reset()
        self.state_label = "inactive"
        capacity = self.segmenter.batch_capacity
        self.get_logger().info(f"configured: {self.segmenter.model_path} ({self.segmenter.decoder.name}, "
                               f"{len(self.segmenter.class_names)} classes, {self.segmenter.backend.description}, "
                               f"{self.segmenter.pipeline_device} pipeline, batch "
                               f"{'dynamic' if capacity is None else capacity}) for {len(self.streams)} camera(s)")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        for camera in self.cameras:
            camera.stream.start()
            camera.subscribe()
        if self.recording is not None:
            self.recording.start({c.stream.name: c.stream.topic("camera_info") for c in self.cameras})
        self._stop.clear()
        self._worker_restarts = 0
        self._worker_errors.mark_started()
        self._start_worker()
        self.state_label = "active"
        for camera in self.cameras:
            self.get_logger().info(f"active: segmenting {camera.image_topic} ({camera.setting('image_transport')}, "
                                   f"{camera.stream.reliability}, {camera.stream.reliability_why})")
        return TransitionCallbackReturn.SUCCESS

    def _start_worker(self) -> None:
        self._worker = threading.Thread(target=self._work, name="seg_worker", daemon=True)
        self._worker.start()

    def _stop_work(self) -> None:
        for camera in self.cameras:
            camera.unsubscribe()
        self._stop.set()
        self._arrived.set()
        for stream in self.streams:
            stream.stop()
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            self._worker = None
        if self.recording is not None:
            self.recording.stop()  # closes the bag cleanly (SIGINT / SIGTERM come through here too)

    def _release_model(self) -> None:
        if self.recording is not None:
            self.recording.destroy()
            self.recording = None
        for camera in self.cameras:
            camera.destroy()
        self.cameras, self._camera_of = [], {}
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
        self._arrived.set()  # a worker waiting out a max_rate_hz interval re-reads the new value at once
        if self.recording is not None:
            self.recording.apply(set(changes))
        for stream in self.streams:
            stream.tracking.apply(self.settings)
        later = [k for k in changes if not spec_for(k).dynamic]  # type: ignore[union-attr]
        if later:
            self.get_logger().info(f"{', '.join(later)} changed: applies at the next configure")
        return result

    # -- the worker --------------------------------------------------------------------------
    def _work(self) -> None:
        """The one worker: nothing one frame or one camera does, and no parameter value, ends this loop."""
        while not self._stop.is_set():
            try:
                self._arrived.clear()  # before taking: a frame put after this sets it again
                turn, soonest = self._turns.take(self.streams, self.settings, self.max_batch, time.monotonic())
                if not turn:
                    # Wait BEFORE taking, so each camera's newest frame is taken when it falls due.
                    self._arrived.wait(min(soonest, 0.2))
                    continue
                self.process_turn(turn)
            except Exception as exc:  # an internal error: counted, logged, and the loop goes on
                self._internal_error(None, exc)

    def process_turn(self, turn: list) -> None:
        """Decode each camera's frame, segment them together, finish each on its own camera."""
        segmenter = self.segmenter
        if segmenter is None:
            return
        ready: list[tuple[CameraIO, DecodedFrame]] = []
        for stream, (serialized, received_at, received_ns) in turn:
            camera = self._camera_of.get(id(stream))
            if camera is None:
                continue
            try:
                frame = camera.decode(serialized, received_at, received_ns)
            except Exception as exc:  # counted on this camera; the turn goes on for the others
                self._internal_error(camera, exc)
                continue
            if frame is not None:
                ready.append((camera, frame))
        if not ready:
            return
        try:
            outputs = segment_frames(segmenter, [(f.image, f.order) for _, f in ready], self.max_batch)
        except Exception:  # noqa: BLE001 - one frame's failure must not cost the other cameras theirs
            outputs = None
        for index, (camera, frame) in enumerate(ready):
            try:
                output = outputs[index] if outputs is not None else segment_frames(segmenter, [(frame.image,
                                                                                                  frame.order)])[0]
                self.batch_sizes[output.result.batch_size] += 1
                camera.finish(frame, output)
            except Exception as exc:  # counted on this camera; the others are finished all the same
                self._internal_error(camera, exc)

    def _internal_error(self, camera: Optional[CameraIO], exc: Exception) -> None:
        detail = f"{type(exc).__name__}: {exc}"
        (camera.stream.stats if camera is not None else self._worker_errors).inference_failed(detail)
        where = f"frame of {camera.stream.label}" if camera is not None else "worker turn"
        self.log_throttled(camera.stream.throttle if camera is not None else self.throttle, "internal",
                           f"{where} failed with an internal error ({detail}); skipped, node keeps running",
                           error=True)

    @property
    def max_batch(self) -> int:
        """Frames a turn takes: ``max_batch``, or with 0 (auto) 4 on a GPU runtime and 1 on the CPU."""
        return effective_max_batch(int(self.settings["max_batch"]), self.segmenter)

    @property
    def instances_topic(self) -> str:
        """The first camera's ~/instances (the only camera's, without ``cameras``)."""
        return self.cameras[0].instances_topic if self.cameras else f"{self.get_fully_qualified_name()}/instances"

    def log_throttled(self, throttle: LogThrottle, key: str, text: str, error: bool = False) -> None:
        """At most one line per key per 5 s per ``throttle``. Never raises: the worker's error path goes here.

        rclpy refuses one call site logging at two severities ("Logger severity cannot be
        changed between calls"), so each severity has its own call.
        """
        try:
            held = throttle.allow(key)
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
        self._worker_errors.worker_restarted()
        self.log_throttled(self.throttle, "worker", "the segmentation worker died; restarted it (once)", error=True)
        self._start_worker()

    # -- diagnostics -------------------------------------------------------------------------
    def publish_diagnostics(self) -> None:
        """Run by the 1 Hz timer: restart a dead worker (once), follow the cameras' offered QoS, then publish the
        node's, each camera's and the recorder's status (one status for the single camera, as always)."""
        self._watch_worker()
        if self.state_label == "active":
            for camera in self.cameras:
                try:
                    camera.follow_offered_qos()
                except Exception as exc:  # noqa: BLE001 - the diagnostics timer must outlive any of this
                    self.log_throttled(camera.stream.throttle, "qos_auto", f"{camera.stream.label}: input_reliability "
                                       f"auto could not follow the publishers ({type(exc).__name__}: {exc})", True)
        worker = self._worker
        alive = worker is not None and worker.is_alive()
        stall = float(self.settings["stall_timeout_s"])
        segmenter = self.segmenter
        backend = f"{segmenter.backend.description}, {segmenter.pipeline_device} pipeline" if segmenter else ""
        decoder = segmenter.decoder.name if segmenter else ""
        node_values = {"max_batch": str(self.max_batch), "batch_capacity": ("dynamic" if segmenter.batch_capacity is None else
                                          str(segmenter.batch_capacity)) if segmenter else "",
                       "batch_sizes_seen": " ".join(f"{k}:{v}" for k, v in sorted(self.batch_sizes.items())),
                       "cameras": str(len(self.streams)),
                       "worker_internal_errors": str(self._worker_errors.snapshot()["inference_errors"])}
        statuses = []
        for stream in self.streams:
            snap = stream.stats.snapshot()
            snap["worker_restarts"] = self._worker_restarts
            verdict = node_health(self.state_label, snap, self.model_error, alive, stall, self.param_problems)
            values = diagnostic_values(snap, self.state_label, self.model_path, backend, decoder,
                                       self.param_problems, alive)
            values.update(camera_values(stream, self.settings))
            decoding_weak = segmenter is not None and segmenter.weak_below is not None  # the Segmenter decides
            values.update(stream.tracking.diagnostic_values(segmenter.settings.score_threshold if decoding_weak
                                                            else None))
            camera = self._camera_of.get(id(stream))
            depth = camera.depth if camera is not None else None
            if depth is not None:
                depth_snap = depth.snapshot(self.settings)
                values.update(depth_values(depth_snap))
                if verdict.level == OK and depth_snap["failing"]:
                    verdict.level, verdict.message = WARN, f"depth arrives but gives no 3D: {depth_snap['last_problem']}"
            name = f"{self.get_fully_qualified_name()}: {stream.name or 'segmentation'}"
            statuses.append((verdict, name, values))
        if len(self.streams) == 1:  # the single camera: one status with the node's values, as always
            verdict, name, values = statuses[0]
            statuses = [(verdict, name, {**values, **node_values})]
        else:
            level, message = worst([(stream.label, verdict) for stream, (verdict, _, _) in zip(self.streams, statuses)])
            summary = {"state": self.state_label, "model": self.model_path, "backend": backend, "decoder": decoder,
                       "worker_alive": str(alive), "worker_restarts": str(self._worker_restarts), **node_values}
            statuses.insert(0, (Health(level, message), f"{self.get_fully_qualified_name()}: segmentation", summary))
        array = DiagnosticArray(status=[DiagnosticStatus(level=_LEVELS[v.level], name=n, message=v.message,
                                                         hardware_id=backend or "none",
                                                         values=[KeyValue(key=k, value=x) for k, x in vals.items()])
                                        for v, n, vals in statuses])
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
        spin_until_shutdown(node)
    finally:
        node._stop_work()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
