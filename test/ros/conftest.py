"""Fixtures of the tests that talk to real ROS participants over loopback DDS."""

from __future__ import annotations

import pytest
from ros_harness import RosClient


@pytest.fixture
def ros(domain_id: int):
    """This test's own ROS participant (outputs, diagnostics, services), spinning in the background."""
    client = RosClient(domain_id)
    yield client
    client.close()
