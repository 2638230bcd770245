"""The ROS 2 side: the only package that imports rclpy and message packages: the node, its
parameters, recording and message conversion. The tools that drive a node live in ``ros.tools``."""

from robot_instseg._exports import exports, lazy_exports

_HOMES = exports(
    node="SegNode",
    parameters="declare_all validate_update",
    recording="NodeRecording",
)
__all__ = sorted(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
