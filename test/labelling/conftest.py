"""Fixtures of the labelling tests: a Label Studio server (skips with the reason when its venv is
missing: `make label-tools`) and a small bag2coco dataset made from real bags."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from label_studio_server import LABEL_STUDIO, TOKEN, label_studio


def cli(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "robot_instseg.cli", *args], capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="session")
def ls_url(tmp_path_factory):
    if not LABEL_STUDIO.exists():
        pytest.skip(f"{LABEL_STUDIO} missing: run 'make label-tools' (Label Studio in its own venv)")
    yield from label_studio(tmp_path_factory.mktemp("label_studio"))


@pytest.fixture(scope="session")
def token() -> str:
    return TOKEN


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    """Two recorded bags (robot-instseg run on scenes) -> bag2coco with train and val."""
    root = tmp_path_factory.mktemp("labelling_data")
    bags = []
    for seed in (31, 32):
        bag = root / f"robot_{seed}"
        cli("run", f"scenes:{seed}", "--out", str(bag), "--quiet")
        bags.append(str(bag))
    cli("bag2coco", *bags, "--out", str(root / "ds"), "--quiet", "--no-model", "--split", "1,1,0", "--cvat")
    return root / "ds"
