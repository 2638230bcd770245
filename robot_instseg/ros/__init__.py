"""The ROS 2 side: the only package that imports rclpy and message packages."""
