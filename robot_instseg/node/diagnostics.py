"""What the node reports on /diagnostics, as plain data: the level and message, and the key/value
pairs. ``robot_instseg.ros.node`` only wraps them in a DiagnosticStatus."""

from __future__ import annotations

from typing import Any, Sequence

from robot_instseg.node.node_stats import OK, WARN, Health, health


def node_health(state: str, snap: dict[str, Any], model_error: str, worker_alive: bool,
                stall_timeout_s: float, param_problems: Sequence[str]) -> Health:
    """The stats' verdict; an otherwise healthy node with refused parameter values is WARN, naming them."""
    verdict = health(state, snap, model_error, worker_alive=worker_alive, stall_timeout_s=stall_timeout_s)
    if param_problems and verdict.level == OK:
        return Health(WARN, f"params file values refused (defaults used): {'; '.join(param_problems)}")
    return verdict


def diagnostic_values(snap: dict[str, Any], state: str, model: str, backend: str, decoder: str,
                      param_problems: Sequence[str], worker_alive: bool) -> dict[str, str]:
    """The key/value pairs of the node's status, every value a string (DiagnosticStatus KeyValue)."""
    values = {
        "state": state, "model": model, "backend": backend, "decoder": decoder,
        "fps": f"{snap['fps']:.2f}", "latency_p50_ms": f"{snap['latency_p50_ms']:.2f}",
        "latency_p95_ms": f"{snap['latency_p95_ms']:.2f}", "segment_p50_ms": f"{snap['segment_p50_ms']:.2f}",
        "instances_per_frame": f"{snap['instances_mean']:.2f}",
        "frames_received": str(snap["received"]), "frames_processed": str(snap["processed"]),
        "frames_dropped": str(snap["dropped"]), "inputs_rejected": str(snap["rejected"]),
        "frame_size_changes": str(snap["size_changes"]), "inference_errors": str(snap["inference_errors"]),
        "last_rejection": snap["last_rejection"], "params_refused": "; ".join(param_problems),
        "last_internal_error": snap["last_error"], "worker_alive": str(worker_alive),
        "worker_restarts": str(snap["worker_restarts"]),
        "seconds_since_segmented": f"{snap['seconds_since_segmented']:.1f}",
        "camera_rate_hz_from_stamps": f"{snap['camera_rate_hz']:.2f}",
        "frames_missing_from_stamps": str(snap["frames_missing"]),
        "frames_lost_in_transport": str(snap["transport_lost"]),
        "incompatible_qos_policy": snap["qos_incompatible"],
    }
    for reason, count in sorted(snap["rejected_by_reason"].items()):
        values[f"rejected_{reason}"] = str(count)
    return values


def depth_values(depth: dict[str, Any]) -> dict[str, str]:
    """Key/value pairs of the depth side: frames with 3D, frames without it by reason, the last problem."""
    values = {"frames_with_3d": str(depth["fused"]), "last_depth_problem": depth["last_problem"]}
    for reason, count in sorted(depth["without"].items()):
        values[f"depth_{reason}"] = str(count)
    share = depth.get("recent_share")
    values["share_with_3d_last_min"] = "n/a (no depth stream)" if share is None else \
        f"{share:.3f} of {depth['recent_frames']}"
    if "wait_ms" in depth:
        lag = depth["lag_ms"]
        values["wait_for_depth_ms"] = f"{depth['wait_ms']:.1f} (cap {depth['wait_cap_ms']:g})"
        values["lag_of_depth_p90_ms"] = "n/a (learning)" if lag is None else f"{lag:.1f}"
    return values


def camera_values(stream: Any, settings: dict[str, Any]) -> dict[str, str]:
    """What is a camera's own: its name, transport, the reliability its subscription uses (and why) and its rate
    cap (``stream``: a ``CameraStream``)."""
    return {"camera": stream.label, "image_transport": str(stream.setting(settings, "image_transport")),
            "input_reliability": str(stream.setting(settings, "input_reliability")),
            "input_reliability_chosen": stream.reliability or "unsubscribed",
            "input_reliability_why": stream.reliability_why,
            "max_rate_hz": f"{float(stream.setting(settings, 'max_rate_hz')):g}"}


def worst(verdicts: Sequence[tuple[str, Health]]) -> tuple[int, str]:
    """The node's level over its cameras: the worst camera's, naming it (OK: each camera's message)."""
    if not verdicts:
        return OK, "no cameras"
    level = max(v.level for _, v in verdicts)
    if level == OK:
        return OK, "; ".join(f"{name}: {v.message}" for name, v in verdicts)
    return level, "; ".join(f"{name}: {v.message}" for name, v in verdicts if v.level == level)
