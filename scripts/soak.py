#!/usr/bin/env python3
"""Soak seg_node for minutes under good and hostile input, and report whether it stays healthy.

    source scripts/env.sh
    python scripts/soak.py --minutes 10 --rate 5 [--hostile-every 10] [--reliability reliable]

seg_node runs in its own process (loopback DDS, its own domain). This process plays synthetic
scenes at --rate as a camera would, replaces every --hostile-every-th frame with a hostile
one (unknown encoding, short data, a step smaller than a row, a 20000x1 sliver, a frame over
max_input_pixels), and runs an adversarial parameter client that every 3 s sets a good or a
bad value (thresholds, class filters, output toggles, out-of-range and NaN values, unknown
class ids; with --rate-flips also max_rate_hz, which moves latency on purpose). It samples
the node's RSS every 5 s and keeps every InstanceArray's latency.

Prints one line per minute (frames, latency p50 / p95, RSS) and a JSON summary: the RSS slope
after the first minute (MB/min, least squares), each minute's p95 against the median of the
minutes, rejections by reason, internal errors, worker restarts and the final health level.
Exit 0 when the node survived with no internal error; 1 otherwise. Stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np


def hostile_frames():
    """Raw Image fields that must each be refused with a reason (or, the sliver, segmented)."""
    from robot_instseg.io.frame_sources import Frame

    good = np.full((480, 640, 3), 90, np.uint8)
    kinds = {
        "unknown_encoding": dict(encoding="rgb_fancy", height=480, width=640, step=1920, data=good.tobytes()),
        "short_data": dict(encoding="rgb8", height=480, width=640, step=1920, data=good.tobytes()[:-7]),
        "step_too_small": dict(encoding="rgb8", height=480, width=640, step=100, data=good.tobytes()),
        "sliver": dict(encoding="rgb8", height=1, width=20000, step=60000, data=bytes(60000)),
        "too_large": dict(encoding="mono8", height=1200, width=1000, step=1000, data=bytes(1_200_000)),
    }
    return [(name, Frame(raw={**fields, "is_bigendian": 0, "frame_id": "camera"}, raw_type="sensor_msgs/msg/Image",
                         name=name)) for name, fields in kinds.items()]


def adversary(node, fqn: str, stop: threading.Event, log: list, rate_flips: bool) -> None:
    """Set parameters every 3 s: valid ones (applied) and invalid ones (refused), until stopped."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    client = node.create_client(SetParameters, f"{fqn}/set_parameters")
    changes = [("score_threshold", 0.4), ("score_threshold", 0.25), ("max_rate_hz", 1e-9),
               ("max_rate_hz", float("nan")), ("max_rate_hz", -3.0), ("class_filter", "999999"),
               ("class_filter", "cup,bowl"), ("class_filter", ""), ("max_detections", 0), ("mask_threshold", 7.0),
               ("publish_debug_image", False), ("publish_debug_image", True), ("max_input_pixels", 0)]
    if rate_flips:
        changes += [("max_rate_hz", 2.0), ("max_rate_hz", 0.0)]
    rng = random.Random(0)
    while not stop.wait(3.0):
        if not client.service_is_ready():
            continue
        name, value = rng.choice(changes)
        future = client.call_async(SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()]))
        deadline = time.monotonic() + 5
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        result = future.result().results[0] if future.done() else None
        log.append((name, repr(value), None if result is None else result.successful))
    # Leave the node in its default state.
    for name, value in (("max_rate_hz", 0.0), ("class_filter", ""), ("score_threshold", 0.25)):
        client.call_async(SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=5.0, help="camera frames per second")
    parser.add_argument("--hostile-every", type=int, default=10, help="every N-th frame is hostile (0 = none)")
    parser.add_argument("--reliability", default="reliable", choices=("reliable", "best_effort"))
    parser.add_argument("--no-adversary", action="store_true", help="no parameter changes")
    parser.add_argument("--rate-flips", action="store_true", help="the adversary also toggles max_rate_hz")
    parser.add_argument("--model", default=None)
    parser.add_argument("--domain", type=int, default=77, help="ROS_DOMAIN_ID for the soak")
    parser.add_argument("--out", default="runs/soak", help="node log and summary.json")
    args = parser.parse_args(argv)
    os.environ.update(ROS_DOMAIN_ID=str(args.domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
                      ROS_LOCALHOST_ONLY="1")
    from robot_instseg.io.frame_sources import scenes
    from robot_instseg.ros.tools.node_process import watched_node
    from robot_instseg.ros.tools.play import Player, PlayOptions

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    overrides = {"input_reliability": args.reliability, "max_input_pixels": 1_000_000, "publish_markers": False}
    if args.model:
        overrides["model_path"] = args.model
    stop = threading.Event()
    param_log: list = []
    rss: list[tuple[float, float]] = []
    with watched_node("/robot_instseg_soak", overrides, out / "seg_node.log", name="robot_instseg_soak") \
            as (seg, node, watcher):
        good = list(scenes(seed=11, count=12))
        hostile = hostile_frames()
        stream = []
        for i in range(len(good) * max(args.hostile_every, 1)):
            if args.hostile_every and i % args.hostile_every == args.hostile_every - 1:
                stream.append(hostile[(i // args.hostile_every) % len(hostile)][1])
            else:
                stream.append(good[i % len(good)])
        player = Player(node, PlayOptions(topic=seg.topic("image"), rate_hz=args.rate, duration_s=args.minutes * 60,
                                          loop=True, reliability=args.reliability))
        if not args.no_adversary:
            threading.Thread(target=adversary, args=(node, seg.fqn, stop, param_log, args.rate_flips),
                             daemon=True).start()

        def sample() -> None:
            while not stop.wait(5.0):
                rss.append((time.time(), seg.rss_mb()))

        threading.Thread(target=sample, daemon=True).start()
        start = time.time()
        sent = player.play(stream)
        time.sleep(2.0)
        stop.set()
        time.sleep(1.0)
        diag = watcher.diagnostic_values()
        status = watcher.diagnostic
        alive = seg.proc.poll() is None
        minutes = []
        for m in range(int(np.ceil(args.minutes))):
            t0 = start + 60 * m
            with watcher.lock:
                lat = np.array([r[1] for r in watcher.records if t0 <= r[0] < t0 + 60])
            mem = [v for t, v in rss if t0 <= t < t0 + 60]
            minutes.append({"minute": m + 1, "frames": int(lat.size),
                            "p50_ms": round(float(np.median(lat)), 1) if lat.size else None,
                            "p95_ms": round(float(np.percentile(lat, 95)), 1) if lat.size else None,
                            "rss_mb": round(float(np.mean(mem)), 1) if mem else None})
            print(f"minute {m + 1:>3}: {lat.size:>5} frames  latency p50 {minutes[-1]['p50_ms']} ms  "
                  f"p95 {minutes[-1]['p95_ms']} ms  RSS {minutes[-1]['rss_mb']} MB")
    after = [(t, v) for t, v in rss if t >= start + 60]
    slope = float(np.polyfit([(t - start) / 60 for t, _ in after], [v for _, v in after], 1)[0]) if len(after) > 2 \
        else float("nan")
    p95 = [m["p95_ms"] for m in minutes if m["p95_ms"] is not None]
    median_p95 = float(np.median(p95)) if p95 else float("nan")
    summary = {
        "minutes": args.minutes, "rate_hz": args.rate, "reliability": args.reliability, "sent": sent,
        "node_alive_at_end": alive, "health_at_end": status.message if status is not None else None,
        "level_at_end": int.from_bytes(status.level, "little") if status is not None and isinstance(status.level, bytes)
        else (int(status.level) if status is not None else None),
        "rss_slope_mb_per_min_after_first_minute": round(slope, 4),
        "rss_first_last_mb": [round(rss[0][1], 1), round(rss[-1][1], 1)] if rss else None,
        "p95_by_minute_ms": p95, "p95_worst_deviation_from_median": round(max(abs(v / median_p95 - 1) for v in p95), 3)
        if p95 else None,
        "diagnostics": {k: v for k, v in diag.items() if k.startswith(("rejected_", "frames_", "inference_errors",
                                                                       "worker_", "inputs_"))},
        "parameter_changes": {"sent": len(param_log), "accepted": sum(1 for *_, ok in param_log if ok),
                              "refused": sum(1 for *_, ok in param_log if ok is False)},
        "minutes_detail": minutes,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    healthy = alive and diag.get("inference_errors") == "0" and diag.get("worker_alive") == "True"
    return 0 if healthy else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as exc:  # seg_node did not come up: one line, the log named
        print(f"soak: {exc}", file=sys.stderr)
        sys.exit(1)
