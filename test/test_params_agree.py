"""config/params.yaml, the launch file's arguments and the node's parameter spec agree."""

from __future__ import annotations

import ast
import re

import yaml

from robot_instseg.params import PARAMS, PARAMS_BY_NAME
from ros_env import REPO

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
    assert set(arguments) == {"model", "image_topic", "compressed", "namespace", "params_file", "log_level"}
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
