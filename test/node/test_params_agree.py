"""config/params.yaml, the launch file's arguments and the node's parameter spec agree."""

from __future__ import annotations

import ast
import re

import yaml
from ros_env import REPO

from robot_instseg.node.params import PARAMS, PARAMS_BY_NAME, params_yaml

PARAMS_FILE = REPO / "config" / "params.yaml"
LAUNCH_FILE = REPO / "launch" / "seg.launch.py"


def _yaml_params() -> dict:
    doc = yaml.safe_load(PARAMS_FILE.read_text())
    assert list(doc) == ["/**"], "params.yaml must apply to the node under any name: '/**'"
    return doc["/**"]["ros__parameters"]


def test_params_file_lists_exactly_the_declared_parameters_with_their_defaults() -> None:
    values = _yaml_params()
    assert list(values) == [p.name for p in PARAMS]
    for name, value in values.items():
        spec = PARAMS_BY_NAME[name]
        assert type(value) is type(spec.default), f"{name}: yaml {value!r} vs spec {spec.default!r}"
        assert value == spec.default, name
        assert spec.validate(value) is None


def test_params_file_is_generated_from_the_spec() -> None:
    """Each default and description is written once, in the spec: regenerate with
    ``python -m robot_instseg.node.params > config/params.yaml``."""
    assert PARAMS_FILE.read_text() == params_yaml()


def test_every_parameter_in_the_params_file_has_a_comment() -> None:
    lines = PARAMS_FILE.read_text().splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"^\s{4}(\w+):", line)
        if match:
            assert lines[index - 1].strip().startswith("#"), f"{match.group(1)} has no comment above it"


def _launch_literal(name: str):
    tree = ast.parse(LAUNCH_FILE.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{LAUNCH_FILE.name} defines no {name}")


def test_launch_arguments_are_the_documented_set_and_map_onto_declared_parameters() -> None:
    arguments = _launch_literal("ARGUMENTS")
    assert set(arguments) == {"model", "image_topic", "compressed", "depth_topic", "camera_info_topic", "remap", "namespace",
                              "params_file", "log_level"}
    for arg, param in _launch_literal("ARGUMENT_PARAMETERS").items():
        assert arg in arguments, arg
        assert param in PARAMS_BY_NAME, f"launch argument {arg} sets undeclared parameter {param}"
    assert "image_transport" in PARAMS_BY_NAME and "compressed" in PARAMS_BY_NAME["image_transport"].choices


def test_spec_refuses_wrong_types_and_out_of_range_values_with_a_reason() -> None:
    assert "must be float" in PARAMS_BY_NAME["score_threshold"].validate("high")
    assert "[0, 1]" in PARAMS_BY_NAME["score_threshold"].validate(1.5)
    assert PARAMS_BY_NAME["score_threshold"].validate(1) is None  # an int is a fine double
    assert "one of" in PARAMS_BY_NAME["model_format"].validate("yolo")
    assert "must be bool" in PARAMS_BY_NAME["publish_labels"].validate(1)
    assert "[1, 65535]" in PARAMS_BY_NAME["max_detections"].validate(0)


def test_running_node_declares_exactly_the_params_file_and_refuses_bad_values(domain_id: int) -> None:
    """The node, started through its entry point with the params file, agrees with it over ROS."""
    import json
    import shutil
    import subprocess
    import sys

    from ros_env import ros_env

    exe = shutil.which("seg_node")
    assert exe, "seg_node is not on PATH (source scripts/env.sh)"
    env = ros_env(domain_id)
    node = subprocess.Popen([exe, "--ros-args", "--params-file", str(PARAMS_FILE), "-r", "__node:=seg_agree"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client = subprocess.run([sys.executable, str(REPO / "test" / "procs" / "param_client.py"), "/seg_agree"],
                                env=env, capture_output=True, text=True, timeout=60)
    finally:
        node.terminate()
        try:
            log, _ = node.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            node.kill()
            log, _ = node.communicate()
    assert client.returncode == 0, client.stdout + client.stderr + log
    report = json.loads(client.stdout.strip().splitlines()[-1])
    ours = [n for n in report["names"] if n in PARAMS_BY_NAME]
    assert sorted(ours) == sorted(p.name for p in PARAMS)
    assert set(report["names"]) - set(ours) <= {"use_sim_time", "start_type_description_service"}
    assert {n: report["values"][n] for n in ours} == _yaml_params()
    assert report["bad"] == [False, "score_threshold must lie in [0, 1], got 1.7"]
    assert report["good"][0] is True and report["after"] == 0.6
