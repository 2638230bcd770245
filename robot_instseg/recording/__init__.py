"""Recording: capture policy, crash-tolerant rosbag2 writing (rosbags), repair. rclpy-free."""

from robot_instseg._exports import public_api

STORAGE_FORMATS = ("mcap", "sqlite3")  # rosbag2 storage plugins we write; the first is the default
__all__, __getattr__ = public_api(__name__, """
    policy:     CapturePolicy PolicyConfig
    recorder:   Recorder RecorderConfig RecorderStatus Capture
    bag_writer: BagWriter BagWriteError
    repair:     repair_bag needs_repair RepairReport
    msg_types:  typestore
""")
__all__.append("STORAGE_FORMATS")
