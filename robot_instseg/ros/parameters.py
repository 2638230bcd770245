"""Declare the node's parameters from robot_instseg.node.params and refuse invalid updates.

ROS already refuses a value of the wrong type; the spec adds ranges and choices, and says
why in the SetParametersResult reason (what `ros2 param set` prints).
"""

from __future__ import annotations

from typing import Any, Optional

from rcl_interfaces.msg import ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from robot_instseg.node.camera_stream import PER_CAMERA_PARAMS, camera_key
from robot_instseg.node.params import PARAMS, PARAMS_BY_NAME, ParamSpec, spec_for


def declare_all(node: Node, problems: Optional[list[str]] = None) -> dict[str, Any]:
    """Declare every spec'd parameter (values from the params file win) and return their values, with each
    camera's own ``<camera>.<name>`` for the per-camera ones (default: the node's value).

    A value from the params file of the wrong type or out of range is not fatal: the
    parameter keeps its default and the reason is appended to ``problems`` (the node logs it
    and reports it in diagnostics), so one typo does not keep a robot's camera pipeline down.
    """
    problems = problems if problems is not None else []
    values = {spec.name: _declare(node, spec.name, spec, spec.default, problems) for spec in PARAMS}
    for camera in values["cameras"]:
        for name in PER_CAMERA_PARAMS:
            key = camera_key(camera, name)
            values[key] = _declare(node, key, PARAMS_BY_NAME[name], values[name], problems)
    return values


def _declare(node: Node, key: str, spec: ParamSpec, default: Any, problems: list[str]) -> Any:
    extra = "" if spec.dynamic else " Read at configure; changes apply on the next configure."
    choices = f" One of: {', '.join(spec.choices)}." if spec.choices else ""
    descriptor = ParameterDescriptor(description=spec.description + choices + extra)
    if isinstance(spec.default, list):  # a string array: rclpy cannot type an empty list, so declare the type
        descriptor.type = ParameterType.PARAMETER_STRING_ARRAY
        node.declare_parameter(key, Parameter.Type.STRING_ARRAY, descriptor)
        try:
            value = list(node.get_parameter(key).value)
        except ParameterUninitializedException:  # not set, or `[]` in a params file: an empty array, typed
            node.set_parameters([Parameter(key, Parameter.Type.STRING_ARRAY, list(default))])
            return list(default)
    else:
        try:
            node.declare_parameter(key, default, descriptor)
        except InvalidParameterTypeException as exc:
            problems.append(f"{key}: {exc}; expected {spec.type_name}")
            node.declare_parameter(key, default, descriptor, ignore_override=True)
            return default
        value = node.get_parameter(key).value
    problem = spec.validate(value)
    if problem:
        problems.append(f"{key}: {problem}" if key != spec.name else problem)
        if not isinstance(spec.default, list):
            node.set_parameters([Parameter(key, value=default)])
        return default
    return value


def validate_update(parameters: list[Parameter]) -> SetParametersResult:
    """on_set_parameters callback body: accept only values the spec accepts."""
    for parameter in parameters:
        spec = spec_for(parameter.name)
        if spec is None:
            continue  # ROS' own (use_sim_time, ...)
        problem = spec.validate(parameter.value)
        if problem:
            return SetParametersResult(successful=False, reason=problem)
    return SetParametersResult(successful=True)
