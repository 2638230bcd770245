"""``robot-instseg`` run as a user runs it, for tests that need its output: a subprocess, bounded in time."""

from __future__ import annotations

import subprocess
import sys


def cli(*args: str, timeout: float = 300) -> str:
    """Run ``robot-instseg ARGS``; its stdout, after asserting it exited 0 (the output named otherwise)."""
    done = subprocess.run([sys.executable, "-m", "robot_instseg.cli", *args], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
