"""What the node decides, without rclpy: the parameter spec, the one-slot mailbox, statistics,
health and the log throttle. ``robot_instseg.ros.node`` wires these to ROS."""

from robot_instseg._exports import public_api

__all__, __getattr__ = public_api(__name__, """
    params:        PARAMS PARAMS_BY_NAME ParamSpec
    frame_mailbox: FrameMailbox
    node_stats:    NodeStats Health health StampGaps LogThrottle
""")
