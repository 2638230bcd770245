"""The node's parameters, declared once.

The node declares exactly these, ``config/params.yaml`` lists exactly these, and the launch
file only sets names from here; tests hold the three together. Kept free of rclpy so the
check (and the CLI) can read it anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from robot_instseg.engine.backends import BACKENDS
from robot_instseg.engine.decoders import DECODERS
from robot_instseg.engine.postprocess import PostprocessSettings
from robot_instseg.engine.segmenter import PIPELINES
from robot_instseg.io.image_encodings import DEFAULT_MAX_INPUT_PIXELS
from robot_instseg.recording import STORAGE_FORMATS
from robot_instseg.recording.policy import MODES as RECORD_MODES
from robot_instseg.recording.policy import PolicyConfig
from robot_instseg.recording.recorder import RecorderConfig
from robot_instseg.tracking.tracker import TrackerConfig


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: its default, meaning, and whether it may change while running."""

    name: str
    default: Any
    description: str
    dynamic: bool = False
    choices: tuple = ()
    check: Optional[Callable[[Any], Optional[str]]] = None

    @property
    def type_name(self) -> str:
        return type(self.default).__name__

    def validate(self, value: Any) -> Optional[str]:
        """Return why ``value`` is refused, or None when it is acceptable."""
        expected = type(self.default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not expected:
            return f"{self.name} must be {expected.__name__}, got {type(value).__name__} {value!r}"
        if self.choices and value not in self.choices:
            return f"{self.name} must be one of {list(self.choices)}, got {value!r}"
        if self.check is not None:
            return self.check(value)
        return None


def _in_range(name: str, low: float, high: float, off: Optional[float] = None) -> Callable[[Any], Optional[str]]:
    """Every number has a stated range: a value outside it (or NaN, or inf) is refused with the range.

    ``off``: one value outside the range that means "off" (0 for rates and budgets).
    """
    def check(value: Any) -> Optional[str]:
        if off is not None and value == off:
            return None
        if not (low <= value <= high):  # NaN fails both comparisons
            extra = f" (or {off:g} = off)" if off is not None else ""
            return f"{name} must lie in [{low:g}, {high:g}]{extra}, got {value}"
        return None

    return check


def _in_unit_interval(name: str) -> Callable[[float], Optional[str]]:
    return _in_range(name, 0.0, 1.0)


DAY_S = 86400.0
_THRESHOLDS = PostprocessSettings()  # the one home of the threshold defaults
_POLICY = PolicyConfig()  # ... and of the capture policy's
_RECORDER = RecorderConfig(directory=Path())  # ... and of the bag writer's
_TRACKER = TrackerConfig()  # ... and of the tracker's
MIB = 2**20

def _cameras_check(value: Any) -> Optional[str]:
    from robot_instseg.node.camera_stream import cameras_problem

    return cameras_problem(value)


PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("autostart", True,
              "Configure and activate on start-up, with no lifecycle manager."),
    ParamSpec("cameras", [],
              "Cameras this node serves with one model: for each name C, inputs ~/C/image (or ~/C/image/compressed), "
              "~/C/depth, ~/C/camera_info and outputs ~/C/instances, ~/C/labels, ~/C/points, ~/C/debug_image, "
              "~/C/markers. A camera may set its own image_transport, input_reliability, input_queue_depth, "
              "max_rate_hz and depth_mode as C.<name> (config/cameras.yaml). Empty = one camera on ~/image, ~/instances, "
              "... as always.", check=_cameras_check),
    ParamSpec("max_batch", 0,
              "Most frames (of different cameras, waiting at the same moment) run as one batch when the model has a "
              "batch axis (1..64). 0 = auto: 4 when the runtime is on a GPU, 1 on the CPU, where a batch measured "
              "only 1.03-1.05x the throughput and cost a third more memory (README 'Several cameras'). A batch-1 "
              "model always runs frames one after another.",
              dynamic=True, check=_in_range("max_batch", 1, 64, off=0)),
    ParamSpec("model_path", "",
              "ONNX file or TensorRT engine; empty = the bundled model in share/robot_instseg/models."),
    ParamSpec("model_format", "auto",
              "Output decoder; auto = detect from the model's outputs and metadata.",
              choices=("auto", *DECODERS)),
    ParamSpec("labels_path", "",
              "Class-name file (one per line); empty = model metadata or a .txt beside the model."),
    ParamSpec("backend", BACKENDS[0], "Inference runtime.", choices=BACKENDS),
    ParamSpec("providers", "tensorrt,cuda,cpu",
              "ONNX Runtime execution providers in order of preference; unavailable ones are skipped with a warning."),
    ParamSpec("device_id", 0, "GPU index for CUDA / TensorRT (0..63).", check=_in_range("device_id", 0, 63)),
    ParamSpec("fp16", False, "Build TensorRT engines in fp16."),
    ParamSpec("pipeline", PIPELINES[0],
              "Stages around the runtime: host (numpy) or device (torch on the runtime's GPU: uint8 upload, "
              "letterbox, mask decode and ownership there); auto = device when the runtime is on CUDA.",
              choices=PIPELINES),
    ParamSpec("engine_cache_dir", "",
              "Where TensorRT engines are cached; empty = ~/.cache/robot_instseg/engines."),
    ParamSpec("num_threads", 0, "CPU inference threads (0..256); 0 = runtime default.",
              check=_in_range("num_threads", 0, 256)),
    ParamSpec("cpu_spin_wait", True,
              "ONNX Runtime's CPU threads spin while a run is in flight (lowest latency) and stop when it returns; "
              "false: they never spin, which frees CPU for other processes at a slower session.run "
              "(README 'Host work per frame')."),
    ParamSpec("score_threshold", _THRESHOLDS.score_threshold, "Minimum instance score kept.", dynamic=True,
              check=_in_unit_interval("score_threshold")),
    ParamSpec("nms_iou_threshold", _THRESHOLDS.iou_threshold, "IoU above which the lower-scored box of a class is suppressed.",
              dynamic=True, check=_in_unit_interval("nms_iou_threshold")),
    ParamSpec("mask_threshold", _THRESHOLDS.mask_threshold, "Mask probability at or above which a pixel belongs to the instance.",
              dynamic=True, check=_in_unit_interval("mask_threshold")),
    ParamSpec("max_detections", _THRESHOLDS.max_detections, "Most instances published per frame (at most 65535).", dynamic=True,
              check=_in_range("max_detections", 1, 65535)),
    ParamSpec("class_filter", "",
              "Comma-separated class names or ids to keep; empty = all classes.", dynamic=True),
    ParamSpec("image_transport", "raw",
              "raw = sensor_msgs/Image on ~/image; compressed = sensor_msgs/CompressedImage on ~/image/compressed.",
              choices=("raw", "compressed")),
    ParamSpec("input_reliability", "auto",
              "QoS reliability of the image, depth and camera_info subscriptions. auto: what the camera offers, as "
              "rosbag2 does (reliable when every publisher is reliable, best_effort when one is not; re-checked while "
              "none is matched), shown in diagnostics. reliable: measured on one machine, every 640x480 frame from a "
              "reliable camera arrives, where best_effort delivered 5-21 % (scripts/transport_loss.py); a best_effort "
              "camera cannot connect to it (ERROR in diagnostics).",
              choices=("auto", "best_effort", "reliable")),
    ParamSpec("input_queue_depth", 5, "QoS history depth of the image subscription (1..100; sensor-data QoS uses 5).",
              check=_in_range("input_queue_depth", 1, 100)),
    ParamSpec("publish_labels", True, "Publish the mono16 instance-id image on ~/labels.", dynamic=True),
    ParamSpec("publish_debug_image", True,
              "Publish the overlay on ~/debug_image (computed only while subscribed).", dynamic=True),
    ParamSpec("publish_markers", True, "Publish RViz markers on ~/markers (built only while subscribed).", dynamic=True),
    ParamSpec("max_rate_hz", 0.0, "Most frames processed per second (0.01..1000); 0 = as fast as the model runs.",
              dynamic=True, check=_in_range("max_rate_hz", 0.01, 1000.0, off=0.0)),
    ParamSpec("max_input_pixels", DEFAULT_MAX_INPUT_PIXELS,
              "Largest frame accepted, in pixels (width x height), checked on raw sizes and on JPEG / PNG headers "
              "before decoding; larger frames are rejected (reason too_large). 1..268435456.", dynamic=True,
              check=_in_range("max_input_pixels", 1, 1 << 28)),
    ParamSpec("stall_timeout_s", 5.0,
              "ERROR in diagnostics when frames arrive but none is processed for this long (0.5..600 s); the "
              "worker is restarted once if it died.", dynamic=True, check=_in_range("stall_timeout_s", 0.5, 600.0)),
    # -- depth: 3D per instance (see robot_instseg.geometry) ---------------------------------------
    ParamSpec("depth_mode", "auto",
              "auto = fuse aligned depth (~/depth, 16UC1 mm or 32FC1 m, registered to the colour image) and ~/camera_info "
              "into every instance whenever they arrive; a frame without usable depth is published with has_3d false "
              "and counted by reason in diagnostics. off = 2D only, depth not subscribed.", choices=("auto", "off")),
    ParamSpec("depth_max_skew_ms", 20.0,
              "Largest stamp difference between a colour frame and the depth frame paired with it (0..1000 ms); "
              "an exact stamp is taken first, else the nearest within this.", dynamic=True,
              check=_in_range("depth_max_skew_ms", 0.0, 1000.0)),
    ParamSpec("depth_wait_ms", 30.0,
              "Shortest wait the output of a frame is given for its depth frame, from the colour frame's arrival "
              "(0..1000 ms); it grows with the depth stream's learned lag up to depth_wait_max_ms. No wait when no "
              "depth arrives at all.", dynamic=True,
              check=_in_range("depth_wait_ms", 0.0, 1000.0)),
    ParamSpec("depth_wait_max_ms", 150.0,
              "Hard cap on the wait for a frame's depth (0..1000 ms). The wait follows the depth stream's learned "
              "lag behind colour (its 90th percentile over the last 10 s, plus 5 ms), at least depth_wait_ms and at "
              "most this; equal to depth_wait_ms, the wait is fixed.", dynamic=True,
              check=_in_range("depth_wait_max_ms", 0.0, 1000.0)),
    ParamSpec("depth_complete_masks", True,
              "Extend each instance's surface past its mask where depth shows its object goes on (unowned pixels "
              "standing above the fitted support plane, at the object's depth, connected to the mask) for the "
              "centroid, box and ~/points; the published mask and ~/labels stay the model's. Off: the mask alone.",
              dynamic=True),
    ParamSpec("occlusion_from_depth", True,
              "On frames with 3D: each instance's occluded_by lists the instances whose surface steps toward the "
              "camera across the border their visible masks share (geometry.depth_order), for any model, with or "
              "without the amodal head. Off, or a frame without depth: occluded_by comes from a model's whole masks "
              "(the amodal head), else stays empty. On by default: on eval3d's scenes it orders 0.87 of matched "
              "pairs right against 0.61 for the best amodal candidate's whole masks.",
              dynamic=True),
    ParamSpec("depth_amodal_extent", False,
              "With a model that has the amodal head: each oriented box spans the whole object, the part its whole "
              "mask says lies behind an occluder placed on the instance's surface plane where depth shows "
              "something in front or no reading (geometry.amodal_extent). The centroid and ~/points stay the "
              "measured surface's. Off by default: it needs whole masks better than today's amodal candidate's "
              "(eval3d measures both boxes). Off, or a model without the head: the visible surface's box.",
              dynamic=True),
    ParamSpec("publish_points", True,
              "Publish ~/points: every instance's depth points (x, y, z, instance_id), only while subscribed.",
              dynamic=True),
    ParamSpec("points_stride", 1, "Keep every N-th point of each instance in ~/points (1..64).", dynamic=True,
              check=_in_range("points_stride", 1, 64)),
    # -- tracking: persistent track_id per object (see robot_instseg.tracking) -----------------------
    ParamSpec("tracking", True,
              "Give every instance a track_id that stays with its object across frames (0 = not confirmed yet); "
              "off: track_id 0 everywhere.", dynamic=True),
    ParamSpec("track_min_hits", _TRACKER.min_hits,
              "Frames an object must be matched in before it gets a track_id (1..100).", dynamic=True,
              check=_in_range("track_min_hits", 1, 100)),
    ParamSpec("track_max_lost_s", _TRACKER.max_lost_s,
              "Seconds of camera time a track is kept while its object is not seen (occlusion, leaving the view); "
              "it gets its id back when it returns within this (0..600).", dynamic=True,
              check=_in_range("track_max_lost_s", 0.0, 600.0)),
    ParamSpec("track_max_out_s", _TRACKER.max_out_s,
              "Seconds of camera time a track that left the view through an image border is remembered: an "
              "object of its class that comes back through that border near where it left gets its id back "
              "(0..3600; 0 = off).", dynamic=True, check=_in_range("track_max_out_s", 0.0, 3600.0)),
    ParamSpec("track_high_score", _TRACKER.high_score,
              "Score from which a detection can start a track; weaker ones (down to track_low_score) only keep "
              "existing tracks alive.", dynamic=True, check=_in_unit_interval("track_high_score")),
    ParamSpec("track_scene_share", _TRACKER.scene_share,
              "In a scene the model is less sure of, tracks start from this share of the median score of the last "
              "10 s of published detections when that is under track_high_score, so the objects it publishes get "
              "ids (0..1; 0 = always track_high_score).", dynamic=True,
              check=_in_unit_interval("track_scene_share")),
    ParamSpec("track_low_score", _TRACKER.low_score,
              "Score below which a detection is ignored by the tracker. Detections from it up to score_threshold "
              "are decoded for the tracker alone (as ByteTrack does): they keep a live track through a frame where "
              "its object scores low, and are never published. Set it at or above score_threshold to decode only "
              "what is published.", dynamic=True,
              check=_in_unit_interval("track_low_score")),
    ParamSpec("track_min_iou", _TRACKER.min_iou,
              "Smallest mask IoU between a detection and a track's predicted mask for a match.", dynamic=True,
              check=_in_unit_interval("track_min_iou")),
    # -- recording (all take effect at once; a change starts a new bag) -------------------------
    ParamSpec("record_mode", "off",
              "Which frames are recorded: off, all, interval (one every record_interval_s), uncertain (a score "
              "in [record_score_low, record_score_high] or a class unseen for record_unseen_class_s) or manual "
              "(only ~/capture and ~/record).", dynamic=True, choices=RECORD_MODES),
    ParamSpec("record_all_cameras", False,
              "With several cameras: a capture triggered by one camera also stores the newest segmented frame of "
              "every other camera (its image, depth, CameraInfo and InstanceArray, under its topics), for "
              "multi-view annotation. ~/capture always records every camera's last frame.", dynamic=True),
    ParamSpec("record_dir", "",
              "Where bags are written; empty = $ROS_HOME/robot_instseg/bags (ROS_HOME defaults to ~/.ros).",
              dynamic=True),
    ParamSpec("record_storage", STORAGE_FORMATS[0], "Bag storage format.", dynamic=True, choices=STORAGE_FORMATS),
    ParamSpec("record_interval_s", _POLICY.interval_s, "Seconds of camera time between frames in interval mode.", dynamic=True,
              check=_in_range("record_interval_s", 0.01, DAY_S)),
    ParamSpec("record_score_low", _POLICY.score_low, "Lower end of the uncertain score band.", dynamic=True,
              check=_in_unit_interval("record_score_low")),
    ParamSpec("record_score_high", _POLICY.score_high, "Upper end of the uncertain score band.", dynamic=True,
              check=_in_unit_interval("record_score_high")),
    ParamSpec("record_unseen_class_s", _POLICY.unseen_class_s,
              "In uncertain mode, record a frame with a class not seen for this many seconds (or never); 0 = off.",
              dynamic=True, check=_in_range("record_unseen_class_s", 0.0, 7 * DAY_S)),
    ParamSpec("record_max_rate_hz", _POLICY.max_rate_hz, "Most frames recorded per second of camera time; 0 = no cap.",
              dynamic=True, check=_in_range("record_max_rate_hz", 0.01, 1000.0, off=0.0)),
    ParamSpec("record_budget_mb", _RECORDER.budget_bytes / MIB,
              "Most MiB of files in record_dir, existing bags included; recording stops with a WARN there. 0 = none.",
              dynamic=True, check=_in_range("record_budget_mb", 0.01, 1e8, off=0.0)),
    ParamSpec("record_split_mb", _RECORDER.split_bytes / MIB, "Start a new bag after this many MiB; 0 = never by size.", dynamic=True,
              check=_in_range("record_split_mb", 0.01, 1e7, off=0.0)),
    ParamSpec("record_split_s", _RECORDER.split_s, "Start a new bag after this many seconds of recording; 0 = never by time.",
              dynamic=True, check=_in_range("record_split_s", 0.1, 7 * DAY_S, off=0.0)),
)

PARAMS_BY_NAME: dict[str, ParamSpec] = {p.name: p for p in PARAMS}


def spec_for(name: str) -> Optional[ParamSpec]:
    """The spec of a node parameter, or of a camera's own ``<camera>.<name>`` for the per-camera ones."""
    from robot_instseg.node.camera_stream import PER_CAMERA_PARAMS, split_camera_key

    if name in PARAMS_BY_NAME:
        return PARAMS_BY_NAME[name]
    camera, base = split_camera_key(name)
    return PARAMS_BY_NAME[base] if camera and base in PER_CAMERA_PARAMS else None


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    return repr(value)


def params_yaml() -> str:
    """``config/params.yaml``, generated from PARAMS (a test holds the file to this): every parameter with
    its default and its description as a comment. ``python -m robot_instseg.node.params`` prints it."""
    lines = ["# Parameters of the robot_instseg node, each with its default.",
             "# Load with: ros2 launch robot_instseg seg.launch.py params_file:=<this file>",
             "# Parameters marked (runtime) can be changed while running: ros2 param set /seg_node NAME VALUE",
             "/**:", "  ros__parameters:"]
    for spec in PARAMS:
        comment = spec.description
        if spec.choices:
            comment += f" One of: {', '.join(str(c) for c in spec.choices)}."
        if spec.dynamic:
            comment += " (runtime)"
        lines += [f"    # {comment}", f"    {spec.name}: {_yaml_value(spec.default)}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(params_yaml(), end="")
