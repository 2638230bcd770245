"""Persistent track ids across frames (mask IoU, scores, classes, camera time). No rclpy."""

from robot_instseg._exports import public_api

__all__, __getattr__ = public_api(__name__, """
    tracker: Tracker TrackerConfig Track
    masks:   crop_iou box_iou
""")
