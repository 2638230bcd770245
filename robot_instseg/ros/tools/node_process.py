"""Start and stop ``seg_node`` as its own process (demo, ROS benchmark, tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Sequence

import rclpy
from rclpy.node import Node

if TYPE_CHECKING:
    from robot_instseg.ros.tools.watch import Watcher


class NodeProcess:
    """seg_node as a child process: a params file first, then a namespace, a node name and ``-p`` overrides.

    ``command`` is how it is started: ``python -m robot_instseg.ros.node`` by default, or the
    installed ``seg_node`` console script (the tests start the entry point users run).
    """

    def __init__(self, namespace: str = "", params_file: Optional[Path] = None,
                 overrides: Optional[dict] = None, log_path: Optional[Path] = None,
                 extra_args: Sequence[str] = (), name: str = "seg_node", command: Optional[Sequence[str]] = None,
                 env: Optional[dict] = None, preexec_fn: Optional[Callable[[], None]] = None) -> None:
        from robot_instseg.engine.model_paths import default_params_file

        args = list(command or [sys.executable, "-m", "robot_instseg.ros.node"])
        args += ["--ros-args", "--params-file", str(params_file or default_params_file())]
        if namespace:
            args += ["-r", f"__ns:={namespace}"]
        if name != "seg_node":
            args += ["-r", f"__node:={name}"]
        for key, value in (overrides or {}).items():
            args += ["-p", f"{key}:={value}"]
        args += list(extra_args)
        self.log_path = log_path
        self._log = open(log_path, "w") if log_path else None
        self.proc = subprocess.Popen(args, stdout=self._log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     env=dict(env if env is not None else os.environ), preexec_fn=preexec_fn)
        self.fqn = f"{namespace.rstrip('/')}/{name}" if namespace else f"/{name}"

    def topic(self, name: str) -> str:
        return f"{self.fqn}/{name}"

    def wait_until_publishing(self, node: Node, timeout_s: float = 60.0, camera: str = "") -> bool:
        """True once the node's ~/instances publisher is visible (configured and loaded); with several cameras,
        ``camera``'s ~/<camera>/instances."""
        prefix = f"{camera}/" if camera else ""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if node.count_publishers(self.topic(prefix + "instances")) > 0 and \
                    node.count_subscribers(self.topic(prefix + "image")) + \
                    node.count_subscribers(self.topic(prefix + "image/compressed")) > 0:
                return True
            time.sleep(0.1)
        return False

    def rss_mb(self) -> float:
        """Resident memory of the node process (Linux /proc)."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return float("nan")

    def stop(self, timeout_s: float = 10.0, sig: int = signal.SIGINT) -> int:
        """Ask the node to shut down (``sig``), kill it after ``timeout_s``; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log is not None:
            self._log.close()
        return self.proc.returncode


@contextmanager
def watched_node(namespace: str, overrides: Optional[dict] = None, log_path: Optional[Path] = None,
                 name: str = "robot_instseg_tool", timeout_s: float = 90.0, camera: str = "",
                 **watch_options) -> Iterator[tuple[NodeProcess, Node, "Watcher"]]:
    """seg_node in its own process, and this process's node spinning in the background with a
    Watcher on seg_node's outputs; yields once seg_node publishes, and tears all down on exit.

    The drivers (demo, ROS bench, soak, transport measurement) share this instead of each
    writing the same start-up and teardown. RuntimeError names the node's log when it does
    not come up.
    """
    from robot_instseg.ros.compat import use_camera_writer_profile
    from robot_instseg.ros.tools.background import BackgroundSpin
    from robot_instseg.ros.tools.watch import Watcher

    use_camera_writer_profile()  # this process plays the cameras (seg_node chooses its own at its entry point)
    seg = NodeProcess(namespace, overrides=overrides, log_path=log_path)
    rclpy.init()
    node = Node(name)
    spinning = BackgroundSpin(node)
    try:
        watcher = Watcher(node, f"{seg.fqn}/{camera}" if camera else seg.fqn, **watch_options)
        if not seg.wait_until_publishing(node, timeout_s, camera):
            raise RuntimeError(f"seg_node did not come up (log: {log_path or 'not kept'})")
        yield seg, node, watcher
    finally:
        seg.stop()
        spinning.stop()
        node.destroy_node()
        rclpy.try_shutdown()
