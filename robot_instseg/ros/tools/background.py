"""Spin a tool's node on a background thread, and stop it cleanly (joined before teardown)."""

from __future__ import annotations

import threading
from typing import Optional

from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node


class BackgroundSpin:
    """Spin a node on a daemon thread, for tools that wait on it from the main thread."""

    def __init__(self, node: Node, context: Optional[Context] = None) -> None:
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self._stop = threading.Event()
        self.thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5.0)
        self.executor.shutdown()
