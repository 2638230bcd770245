"""Ask a running node for its parameters over its services; try one bad and one good update.

Prints one JSON object: {"names": [...], "values": {...}, "bad": [ok, reason], "good": [ok, reason]}.
"""

from __future__ import annotations

import json
import sys
import time

import rclpy
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, ListParameters, SetParameters


def _call(node, client, request, timeout=10.0):
    if not client.wait_for_service(timeout_sec=timeout):
        raise SystemExit(f"service {client.srv_name} not available")
    future = client.call_async(request)
    deadline = time.monotonic() + timeout
    while not future.done() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    if not future.done():
        raise SystemExit(f"no answer from {client.srv_name}")
    return future.result()


def _plain(value: ParameterValue):
    return {ParameterType.PARAMETER_BOOL: value.bool_value, ParameterType.PARAMETER_INTEGER: value.integer_value,
            ParameterType.PARAMETER_DOUBLE: value.double_value,
            ParameterType.PARAMETER_STRING: value.string_value,
            ParameterType.PARAMETER_STRING_ARRAY: list(value.string_array_value)}.get(value.type)


def main(target: str) -> int:
    rclpy.init()
    node = rclpy.create_node("param_client")
    try:
        names = _call(node, node.create_client(ListParameters, f"{target}/list_parameters"),
                      ListParameters.Request()).result.names
        got = _call(node, node.create_client(GetParameters, f"{target}/get_parameters"),
                    GetParameters.Request(names=list(names)))
        values = {n: _plain(v) for n, v in zip(names, got.values)}
        setter = node.create_client(SetParameters, f"{target}/set_parameters")
        bad = Parameter(name="score_threshold", value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE,
                                                                     double_value=1.7))
        good = Parameter(name="score_threshold", value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE,
                                                                      double_value=0.6))
        results = [_call(node, setter, SetParameters.Request(parameters=[p])).results[0] for p in (bad, good)]
        after = _call(node, node.create_client(GetParameters, f"{target}/get_parameters"),
                      GetParameters.Request(names=["score_threshold"])).values[0].double_value
        print(json.dumps({"names": list(names), "values": values, "after": after,
                          "bad": [results[0].successful, results[0].reason],
                          "good": [results[1].successful, results[1].reason]}))
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
