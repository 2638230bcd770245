"""Test-side ROS participant and a seg_node process, each in the test's own domain on loopback.

``RosClient`` is an rclpy context + node spinning on a background thread inside the pytest
process (a separate process from the node under test and from any publisher process).
``SegNodeProcess`` starts the real ``seg_node`` entry point with the params file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile

from ros_env import REPO, ros_env

PARAMS_FILE = REPO / "config" / "params.yaml"


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class RosClient:
    def __init__(self, domain_id: int, name: str = "test_client") -> None:
        for key, value in ros_env(domain_id).items():
            if key.startswith("ROS_"):
                os.environ[key] = value
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        self.lock = threading.Lock()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def collect(self, msg_type, topic: str, depth: int = 50) -> list:
        """Subscribe (reliable) and return the list the messages are appended to."""
        received: list = []
        self.node.create_subscription(msg_type, topic, lambda m: received.append(m), QoSProfile(depth=depth))
        return received

    def call(self, srv_type, name: str, request, timeout: float = 10.0):
        client = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=timeout), f"service {name} not available"
        future = client.call_async(request)
        assert wait_for(future.done, timeout), f"no answer from {name}"
        return future.result()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


class SegNodeProcess:
    """The real ``seg_node`` console script, params file first, then ``-p`` overrides."""

    def __init__(self, domain_id: int, overrides: dict, params_file: Path = PARAMS_FILE, name: str = "seg",
                 log_dir: Optional[Path] = None) -> None:
        exe = shutil.which("seg_node")
        assert exe, "seg_node is not on PATH (source scripts/env.sh)"
        args = [exe, "--ros-args", "--params-file", str(params_file), "-r", f"__node:={name}"]
        for key, value in overrides.items():
            args += ["-p", f"{key}:={value}"]
        self.fqn = f"/{name}"
        self.log_path = (log_dir or Path("/tmp")) / f"{name}_{domain_id}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, env=ros_env(domain_id), stdout=self._log, stderr=subprocess.STDOUT,
                                     text=True)

    def topic(self, name: str) -> str:
        return f"{self.fqn}/{name}"

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
