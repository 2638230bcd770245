"""`robot-instseg bench --ros --depth` over real DDS: a node fed a live RGB-D clip, the report's 3D and track-id
shares read from what the node published (not from its own counters)."""

from __future__ import annotations

import json
import subprocess
import sys

from ros_env import ros_env


def test_bench_ros_with_depth_reports_3d_and_id_shares(domain_id, tmp_path) -> None:
    done = subprocess.run([sys.executable, "-m", "robot_instseg.cli", "bench", "--ros", "--depth", "--rate", "5",
                           "--duration", "6", "--json"], env=ros_env(domain_id), cwd=tmp_path,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["depth"] is True and report["received"] >= report["sent"] - 2 > 20
    camera = report["per_camera"][0]
    assert camera["frames"] == camera["received"]
    # frames whose depth was fused, by the published depth_status; the reasons for the others are the node's
    assert camera["frames_with_depth"] >= camera["frames"] // 2, camera
    assert camera["frames"] - camera["frames_with_depth"] <= sum(int(v) for v in camera["without_depth"].values())
    assert "cap 150" in camera["wait_for_depth_ms"]
    # the clip's objects stay in view: nearly all of them persist frame to frame, and tracking names them
    assert camera["persisting_instances"] > 5 * camera["frames"] // 2
    assert camera["id_share"] > 0.8, camera
