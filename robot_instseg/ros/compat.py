"""The one place where the ROS 2 distributions we support (Humble, Jazzy, Kilted) differ for us."""

from __future__ import annotations

try:  # Iron and newer
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks  # type: ignore[no-redef]

from std_msgs.msg import Header

__all__ = ["CHECK_FIELDS_SLOT", "SubscriptionEventCallbacks", "spin_until_shutdown"]

# Jazzy and newer: every generated message has a ``_check_fields`` slot (its setters' checks, off unless
# ROS_PYTHON_CHECK_FIELDS=1); Humble's have none. ``message_slots`` sets it when it builds a message slot by slot.
CHECK_FIELDS_SLOT = "_check_fields" in Header.__slots__


def spin_until_shutdown(node) -> None:  # type: ignore[no-untyped-def]
    """``rclpy.spin`` that returns when ROS shuts down, whichever way the shutdown lands.

    A signal's ``rcl_shutdown`` can fall between ``spin``'s ``context.ok()`` and its next wait set; rclpy then
    raises ``RCLError: failed to initialize wait set: the given context is not valid`` (every distribution),
    which is a shutdown, not a fault. An RCLError while the context is still valid stays an error."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.impl.implementation_singleton import rclpy_implementation

    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except rclpy_implementation.RCLError:
        if node.context.ok():
            raise


def camera_writer_profile() -> str:
    """config/fastdds_camera_writer.xml, or its Fast DDS 2 twin on Humble and Jazzy (their XML tags differ)."""
    import os

    from robot_instseg.engine.model_paths import config_file

    try:
        from importlib.metadata import version

        major = int(version("ros-fastdds").split(".")[0])  # the ros-* wheels carry it
    except Exception:  # a ROS install: its distribution says which Fast DDS it has
        major = 2 if os.environ.get("ROS_DISTRO", "") in ("humble", "iron", "jazzy") else 3
    return str(config_file("fastdds_camera_writer.xml" if major >= 3 else "fastdds2_camera_writer.xml"))


def use_camera_writer_profile() -> None:
    """Before a process's first participant (seg_node, and the tools that play a camera driver): its writers
    repair a lost fragment within milliseconds instead of at the next sample (the profile's comment says why),
    unless the user chose a Fast DDS profile or another RMW."""
    import os

    rmw = os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if rmw.startswith("rmw_fastrtps") and not os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE"):
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = camera_writer_profile()
