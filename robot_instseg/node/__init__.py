"""What the node decides, without rclpy: the parameter spec, the one-slot mailbox, statistics,
health and the log throttle. ``robot_instseg.ros.node`` wires these to ROS."""

from robot_instseg._exports import exports, lazy_exports

_HOMES = exports(
    params="PARAMS PARAMS_BY_NAME ParamSpec parse_class_filter",
    frame_mailbox="FrameMailbox",
    node_stats="NodeStats Health health StampGaps LogThrottle",
)
__all__ = sorted(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
