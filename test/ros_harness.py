"""Test-side ROS participant and a seg_node process, each in the test's own domain on loopback.

``RosClient`` is an rclpy context + node spinning on a background thread inside the pytest
process (a separate process from the node under test and from any publisher process).
``SegNodeProcess`` starts the real ``seg_node`` entry point with the params file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import rclpy
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters, SetParametersAtomically
from rclpy.qos import QoSProfile
from ros_env import REPO, ros_env

from robot_instseg.ros.compat import SubscriptionEventCallbacks
from robot_instseg.ros.tools.background import BackgroundSpin
from robot_instseg.ros.tools.node_process import NodeProcess

PARAMS_FILE = REPO / "config" / "params.yaml"
PUBLISHER = REPO / "test" / "procs" / "publish_frames.py"


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
        self._spinning = BackgroundSpin(self.node, self.context)
        self.lock = threading.Lock()
        self.lost: dict[str, int] = {}

    def collect(self, msg_type, topic: str, depth: int = 50) -> list:
        """Subscribe (reliable) and return the list the messages are appended to; ``lost[topic]`` counts
        the messages the middleware reports it lost on the way (a reliable writer's keep-last history
        overwrote them before a lost fragment could be repaired)."""
        received: list = []
        self.lost.setdefault(topic, 0)

        def on_lost(info) -> None:
            self.lost[topic] += int(info.total_count_change)

        self.node.create_subscription(msg_type, topic, lambda m: received.append(m), QoSProfile(depth=depth),
                                      event_callbacks=SubscriptionEventCallbacks(message_lost=on_lost))
        return received

    def call(self, srv_type, name: str, request, timeout: float = 10.0):
        client = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=timeout), f"service {name} not available"
        future = client.call_async(request)
        assert wait_for(future.done, timeout), f"no answer from {name}"
        return future.result()

    def close(self) -> None:
        self._spinning.stop()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


class SegNodeProcess(NodeProcess):
    """The real ``seg_node`` console script in the test's domain, params file first, then ``-p`` overrides;
    stopped with SIGTERM (what launch and systemd send)."""

    def __init__(self, domain_id: int, overrides: dict, params_file: Path = PARAMS_FILE, name: str = "seg",
                 log_dir: Optional[Path] = None, preexec_fn: Optional[Callable[[], None]] = None,
                 extra_args: Sequence[str] = ()) -> None:
        exe = shutil.which("seg_node")
        assert exe, "seg_node is not on PATH (source scripts/env.sh)"
        super().__init__(params_file=params_file, overrides=overrides, name=name, command=[exe],
                         log_path=(log_dir or Path("/tmp")) / f"{name}_{domain_id}.log", env=ros_env(domain_id),
                         preexec_fn=preexec_fn, extra_args=extra_args)

    def log(self) -> str:
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout_s: float = 10.0, sig: int = signal.SIGTERM) -> int:
        return super().stop(timeout_s, sig)


def start_node(domain_id: int, tmp_path: Path, preexec_fn: Optional[Callable[[], None]] = None,
               **overrides) -> SegNodeProcess:
    """Reliable input: 900 KB frames over best-effort UDP lose fragments on a loaded machine,
    and these tests need to know exactly which frames arrived."""
    return SegNodeProcess(domain_id, {"input_reliability": "reliable", **overrides}, log_dir=tmp_path,
                          preexec_fn=preexec_fn)


def wait_subscribed(ros: RosClient, node: SegNodeProcess, topic: str = "image", timeout: float = 60) -> None:
    ok = wait_for(lambda: ros.node.count_subscribers(node.topic(topic)) > 0, timeout)
    assert ok, f"seg_node never subscribed to {node.topic(topic)}; log:\n{node.log()}"


def publish(domain_id: int, topic: str, plan: str, rate: float = 5.0, first_sec: int = 100,
            reliability: str = "reliable") -> list[dict]:
    """Run test/procs/publish_frames.py (a separate process) and return what it sent."""
    done = subprocess.run([sys.executable, str(PUBLISHER), topic, plan, str(rate), str(first_sec), reliability],
                          env=ros_env(domain_id),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


RGBD_PUBLISHER = REPO / "test" / "procs" / "publish_rgbd.py"


def publish_rgbd(domain_id: int, node_fqn: str, rate: float = 3.0) -> list[dict]:
    """Run test/procs/publish_rgbd.py (colour, depth and CameraInfo of synthetic scenes, good and broken) to
    seg_node ``node_fqn`` and return what it sent."""
    done = subprocess.run([sys.executable, str(RGBD_PUBLISHER), node_fqn, f"{rate:g}"], env=ros_env(domain_id),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def rgbd_around_parameter(ros: "RosClient", node: "SegNodeProcess", domain_id: int, name: str, value
                          ) -> tuple[list[dict], list, list]:
    """The RGB-D frames of publish_rgbd sent to ``node`` twice, its parameter ``name`` set to ``value`` in
    between: (what was sent, the InstanceArrays before, those after)."""
    from robot_instseg_msgs.msg import InstanceArray

    instances = ros.collect(InstanceArray, node.topic("instances"))
    wait_subscribed(ros, node)
    wait_subscribed(ros, node, "depth")
    sent = publish_rgbd(domain_id, node.fqn)
    assert wait_for(lambda: len(instances) >= len(sent) - 2, 30), (len(instances), node.log()[-2000:])
    before = list(instances)
    assert set_parameter(ros, node, name, value) == (True, "")
    publish_rgbd(domain_id, node.fqn)
    assert wait_for(lambda: len(instances) >= len(before) + len(sent) - 2, 30), node.log()[-2000:]
    return sent, before, list(instances)[len(before):]


def latest_status(diagnostics: list, node_fqn: str, part: str = "segmentation"):
    """The newest DiagnosticStatus named '<node>: <part>' (part: segmentation or recording)."""
    for array in reversed(diagnostics):
        for status in array.status:
            if status.name == f"{node_fqn}: {part}":
                return status
    return None


def values(status) -> dict:
    return {kv.key: kv.value for kv in status.values} if status is not None else {}


def parameter_value(value) -> ParameterValue:
    kind = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
            float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}[type(value)]
    pv = ParameterValue(type=kind)
    setattr(pv, {bool: "bool_value", int: "integer_value", float: "double_value", str: "string_value"}[type(value)],
            value)
    return pv


def set_parameters(ros: RosClient, node: SegNodeProcess, **changes) -> tuple[bool, str]:
    """Set several parameters in one atomic request (the node sees them together)."""
    request = SetParametersAtomically.Request(
        parameters=[Parameter(name=k, value=parameter_value(v)) for k, v in changes.items()])
    result = ros.call(SetParametersAtomically, f"{node.fqn}/set_parameters_atomically", request).result
    return result.successful, result.reason


def set_parameter(ros: RosClient, node: SegNodeProcess, name: str, value) -> tuple[bool, str]:
    result = ros.call(SetParameters, f"{node.fqn}/set_parameters",
                      SetParameters.Request(parameters=[Parameter(name=name, value=parameter_value(value))])).results[0]
    return result.successful, result.reason
