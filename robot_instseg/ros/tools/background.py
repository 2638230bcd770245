"""Spin a tool's node on a background thread, and stop it cleanly (joined before teardown)."""

from __future__ import annotations

import threading

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node


class BackgroundSpin:
    def __init__(self, node: Node) -> None:
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self._stop = threading.Event()
        self.thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.1)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5.0)
        self.executor.shutdown()
