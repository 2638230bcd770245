"""Shared fixtures: a per-test ROS domain, and the repository paths."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TEST_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(TEST_DIR))

from ros_env import next_domain_id  # noqa: E402


@pytest.fixture
def domain_id() -> int:
    """A ROS_DOMAIN_ID of this test's own."""
    return next_domain_id()
