"""Recording: capture policy, crash-tolerant rosbag2 writing (rosbags), repair. rclpy-free."""

from robot_instseg._exports import exports, lazy_exports

_HOMES = exports(
    policy="CapturePolicy PolicyConfig",
    recorder="Recorder RecorderConfig RecorderStatus Capture",
    bag_writer="BagWriter BagWriteError",
    repair="repair_bag needs_repair RepairReport",
    msg_types="typestore",
)
STORAGE_FORMATS = ("mcap", "sqlite3")  # rosbag2 storage plugins we write; the first is the default
__all__ = sorted([*_HOMES, "STORAGE_FORMATS"])
__getattr__ = lazy_exports(__name__, _HOMES)
