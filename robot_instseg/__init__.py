"""robot_instseg: real-time instance segmentation for ROS 2 robots, and its data loop.

Everything here imports without rclpy; only ``robot_instseg.ros`` needs ROS.
"""

__version__ = "0.1.0"
