"""Environment for test processes that start ROS 2 participants: loopback-only DDS, own domain."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
_DOMAINS = itertools.count(10 + (os.getpid() % 40) * 2)


def next_domain_id() -> int:
    """A fresh ROS_DOMAIN_ID in [10, 200) for one test, so parallel runs do not meet."""
    return 10 + (next(_DOMAINS) - 10) % 190


def ros_env(domain_id: int, **extra: str) -> dict[str, str]:
    """Environment that keeps DDS discovery and traffic on loopback, in ``domain_id``."""
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain_id),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_LOCALHOST_ONLY="1",
        PYTHONUNBUFFERED="1",
    )
    # The test's camera drivers publish as the README tells users to start theirs: with the camera writer profile
    # (a lost fragment repaired within ms, not one frame later, when the one-slot mailbox may already hold the
    # next frame). Tests about lag make it themselves.
    from robot_instseg.ros.compat import camera_writer_profile

    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", camera_writer_profile())
    env.update(extra)
    return env


def run_python(code: str, domain_id: int, timeout: float, args: Optional[list[str]] = None) -> subprocess.Popen:
    """Start ``python -c code`` as a separate ROS process in ``domain_id``."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *(args or [])],
        env=ros_env(domain_id),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(REPO),
    )
