"""The one place where the ROS 2 distributions we support (Humble, Jazzy, Kilted) differ for us."""

from __future__ import annotations

try:  # Iron and newer
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks  # type: ignore[no-redef]

__all__ = ["SubscriptionEventCallbacks"]
