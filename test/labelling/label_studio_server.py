"""A real Label Studio server for the tests, started and stopped by scripts/label_studio.sh."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "label_studio.sh"
LABEL_STUDIO = REPO / ".venv-labelstudio" / "bin" / "label-studio"
TOKEN = "robotinstsegtesttoken0000000000000000000"  # the script's default test user and token
USER, PASSWORD = "robot@example.com", "robot-instseg-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def label_studio(data: Path) -> Iterator[str]:
    """Start a server on a free loopback port, yield its URL, stop it (bounded in time)."""
    port = free_port()
    done = subprocess.run(["bash", str(SCRIPT), "start", str(data), str(port)], capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        pytest.skip(f"Label Studio did not start here: {' '.join(done.stderr.split())[-1500:]}")
    print(done.stdout.strip())  # the start-up time (first start: migrations)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(data)], timeout=60)
