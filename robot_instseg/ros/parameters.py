"""Declare the node's parameters from robot_instseg.params and refuse invalid updates.

ROS already refuses a value of the wrong type; the spec adds ranges and choices, and says
why in the SetParametersResult reason (what `ros2 param set` prints).
"""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from robot_instseg.params import PARAMS, PARAMS_BY_NAME


def declare_all(node: Node) -> dict[str, Any]:
    """Declare every spec'd parameter (values from the params file win); return their values."""
    for spec in PARAMS:
        extra = "" if spec.dynamic else " Read at configure; changes apply on the next configure."
        choices = f" One of: {', '.join(spec.choices)}." if spec.choices else ""
        node.declare_parameter(spec.name, spec.default,
                               ParameterDescriptor(description=spec.description + choices + extra))
    values = {spec.name: node.get_parameter(spec.name).value for spec in PARAMS}
    problems = [p for p in (PARAMS_BY_NAME[n].validate(v) for n, v in values.items()) if p]
    if problems:
        raise ValueError("invalid parameters: " + "; ".join(problems))
    return values


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
