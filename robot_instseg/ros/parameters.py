"""Declare the node's parameters from robot_instseg.node.params and refuse invalid updates.

ROS already refuses a value of the wrong type; the spec adds ranges and choices, and says
why in the SetParametersResult reason (what `ros2 param set` prints).
"""

from __future__ import annotations

from typing import Any, Optional

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.node import Node
from rclpy.parameter import Parameter

from robot_instseg.node.params import PARAMS, PARAMS_BY_NAME


def declare_all(node: Node, problems: Optional[list[str]] = None) -> dict[str, Any]:
    """Declare every spec'd parameter (values from the params file win) and return their values.

    A value from the params file of the wrong type or out of range is not fatal: the
    parameter keeps its default and the reason is appended to ``problems`` (the node logs it
    and reports it in diagnostics), so one typo does not keep a robot's camera pipeline down.
    """
    problems = problems if problems is not None else []
    for spec in PARAMS:
        extra = "" if spec.dynamic else " Read at configure; changes apply on the next configure."
        choices = f" One of: {', '.join(spec.choices)}." if spec.choices else ""
        descriptor = ParameterDescriptor(description=spec.description + choices + extra)
        try:
            node.declare_parameter(spec.name, spec.default, descriptor)
        except InvalidParameterTypeException as exc:
            problems.append(f"{spec.name}: {exc}; expected {spec.type_name}")
            node.declare_parameter(spec.name, spec.default, descriptor, ignore_override=True)
            continue
        problem = spec.validate(node.get_parameter(spec.name).value)
        if problem:
            problems.append(problem)
            node.set_parameters([Parameter(spec.name, value=spec.default)])
    return {spec.name: node.get_parameter(spec.name).value for spec in PARAMS}


def validate_update(parameters: list[Parameter]) -> SetParametersResult:
    """on_set_parameters callback body: accept only values the spec accepts."""
    for parameter in parameters:
        spec = PARAMS_BY_NAME.get(parameter.name)
        if spec is None:
            continue  # ROS' own (use_sim_time, ...)
        problem = spec.validate(parameter.value)
        if problem:
            return SetParametersResult(successful=False, reason=problem)
    return SetParametersResult(successful=True)
