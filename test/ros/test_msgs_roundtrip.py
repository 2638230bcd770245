"""Every robot_instseg_msgs type crosses real DDS between two processes unchanged."""

from __future__ import annotations

import json
import subprocess
import sys

from ros_env import REPO, ros_env

SCRIPT = str(REPO / "test" / "procs" / "msg_roundtrip.py")


def test_every_message_type_arrives_field_for_field_equal(domain_id: int) -> None:
    env = ros_env(domain_id)
    sub = subprocess.Popen([sys.executable, SCRIPT, "sub"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    pub = subprocess.Popen([sys.executable, SCRIPT, "pub"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    try:
        out, err = sub.communicate(timeout=40)
    finally:
        pub.terminate()
        try:
            pub.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pub.kill()
    assert sub.returncode == 0, f"subscriber got not every type:\n{out}\n{err}"
    received = json.loads(out.strip().splitlines()[-1])

    sys.path.insert(0, str(REPO / "test" / "procs"))
    from msg_roundtrip import sample_array, sample_instance, to_plain

    assert received["array"] == to_plain(sample_array())
    assert received["instance"] == to_plain(sample_instance(5, True))
    # The sample really exercises the fields (not all defaults): masks, NaN 3D, names.
    array = received["array"]
    assert array["image_width"] == 640 and len(array["instances"]) == 3
    assert array["instances"][1]["centroid"]["x"] == "nan" and array["instances"][0]["has_3d"]
    assert sum(array["instances"][2]["mask"]["data"]) > 0
    assert [i["same_object_as"] for i in array["instances"]] == [0, 1, 2]
    whole = array["instances"][1]
    assert whole["has_amodal"] and whole["occluded_by"] == [3, 1] and whole["occluded_fraction"] == 0.25
    assert len(whole["amodal_mask"]["data"]) == whole["amodal_bbox"]["width"] * whole["amodal_bbox"]["height"]
