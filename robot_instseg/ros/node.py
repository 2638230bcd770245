"""The robot_instseg node (entry point ``seg_node``).

At this stage it declares and validates the full parameter set from robot_instseg.params,
so the params file, launch file and node are held together. Image input, segmentation and
publishing are wired in by the node issue (lifecycle node, one-slot mailbox, worker).
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

import rclpy
from rclpy.node import Node

from robot_instseg.ros.parameters import declare_all, validate_update


class SegNode(Node):
    def __init__(self, name: str = "seg_node") -> None:
        super().__init__(name)
        self.settings = declare_all(self)
        self.add_on_set_parameters_callback(validate_update)
        self.get_logger().info(f"parameters declared: {len(self.settings)}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    rclpy.init(args=list(argv) if argv is not None else sys.argv)
    try:
        node = SegNode()
    except ValueError as exc:
        print(f"seg_node: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
