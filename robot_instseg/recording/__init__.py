"""Recording: capture policy, crash-tolerant rosbag2 writing (rosbags), repair. rclpy-free."""
