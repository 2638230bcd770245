"""A real Ray cluster of two simulated nodes on this machine (``ray.cluster_utils.Cluster``), on loopback,
started and stopped by the tests that need one; the offline verbs join it with ``--ray ADDRESS``."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",  # no usage report, no token file in HOME
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # every node and driver on 127.0.0.1: traffic stays on loopback


def ray_missing() -> str:
    """Why Ray cannot run here ('' when it can): the extra `make setup-ray` installs it."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "Ray Data is not installed: run 'make setup-ray'"
    return ""


def two_node_cluster(tmp: Path):
    """A head and a worker node, 2 CPUs each (logical: they share this machine's cores), 200 MB object
    stores, on 127.0.0.1; the caller shuts it down."""
    os.environ.update(RAY_ENV)
    # Ray writes the cluster's address to <its temp folder>/ray/ray_current_cluster even when the nodes' temp_dir
    # is given, and only a Ray started without temp_dir makes that folder: on a machine where no Ray ran before
    # (no /tmp/ray), the head failed to start. (A temp folder of the test's own is no way out: the verbs' local
    # Rays would inherit it, and their socket paths grow past AF_UNIX's 107 bytes.)
    Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir(), "ray").mkdir(exist_ok=True)
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 2, "object_store_memory": 200 * 2**20, "node_ip_address": "127.0.0.1",
            "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "temp_dir": str(tmp)})
    cluster.add_node(**node)
    cluster.wait_for_nodes()
    return cluster


def run_cli(*args: str, timeout: float = 300, ok: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """``robot-instseg ARGS`` in a fresh process, bounded in time."""
    done = subprocess.run([sys.executable, "-m", "robot_instseg.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **RAY_ENV, **(env or {})})
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    return done


def bag_messages(path: Path) -> list[tuple[str, str, int, bytes]]:
    """Every message of a bag, read by rosbags (not our writer): topic, type, receive time, CDR bytes."""
    from rosbags.highlevel import AnyReader

    with AnyReader([Path(path)]) as reader:
        return [(c.topic, c.msgtype, t, bytes(d)) for c, t, d in reader.messages()]
