"""The ROS 2 side: the only package that imports rclpy and message packages: the node, its
parameters, recording and message conversion. The tools that drive a node live in ``ros.tools``."""

from robot_instseg._exports import public_api

__all__, __getattr__ = public_api(__name__, """
    node:       SegNode
    parameters: declare_all validate_update
    recording:  NodeRecording
""")
