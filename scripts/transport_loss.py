#!/usr/bin/env python3
"""How many camera frames reach seg_node on this machine, per subscription QoS and frame rate.

    source scripts/env.sh
    python scripts/transport_loss.py [--seconds 10] [--rates 10 30] [--depths 5]

A camera-like publisher in this process (reliable, depth 5, like most drivers' defaults)
sends 640x480 rgb8 frames (900 KB) at each rate; seg_node runs in its own process with
``input_reliability`` best_effort or reliable and ``input_queue_depth`` each of --depths.
For every combination it prints what was sent, what the node's subscription received
(its ``frames_received`` diagnostic), the node's own estimate of frames missing from the
stamps, and the share delivered. Loopback only, its own ROS domain; stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def measure(reliability: str, depth: int, rate: float, seconds: float, frames) -> dict:
    from robot_instseg.ros.tools.node_process import watched_node
    from robot_instseg.ros.tools.play import Player, PlayOptions

    overrides = {"input_reliability": reliability, "input_queue_depth": depth, "max_rate_hz": 1.0}
    with watched_node("/robot_instseg_transport", overrides, name="robot_instseg_transport") as (seg, node, watcher):
        player = Player(node, PlayOptions(topic=seg.topic("image"), rate_hz=rate, duration_s=seconds, loop=True,
                                          reliability="reliable"))
        time.sleep(1.0)
        sent = player.play(frames)
        time.sleep(3.0)  # two diagnostics periods
        values = watcher.diagnostic_values()
    received = int(values.get("frames_received", 0))
    return {"reliability": reliability, "depth": depth, "rate_hz": rate, "sent": sent, "received": received,
            "missing_from_stamps": int(values.get("frames_missing_from_stamps", 0)),
            "camera_rate_from_stamps_hz": float(values.get("camera_rate_hz_from_stamps", 0.0)),
            "delivered": round(received / sent, 3) if sent else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", type=float, nargs="+", default=[10.0, 30.0])
    parser.add_argument("--depths", type=int, nargs="+", default=[5])
    parser.add_argument("--domain", type=int, default=78)
    args = parser.parse_args(argv)
    os.environ.update(ROS_DOMAIN_ID=str(args.domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
                      ROS_LOCALHOST_ONLY="1")
    from robot_instseg.io.frame_sources import scenes

    frames = list(scenes(seed=3, count=6))
    rows = []
    for reliability in ("best_effort", "reliable"):
        for depth in args.depths:
            for rate in args.rates:
                row = measure(reliability, depth, rate, args.seconds, frames)
                rows.append(row)
                print(f"{reliability:<12} depth {depth:>3}  {rate:>5g} Hz: sent {row['sent']:>4}  received "
                      f"{row['received']:>4} ({row['delivered']:.0%})  missing by stamps {row['missing_from_stamps']}",
                      flush=True)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as exc:  # seg_node did not come up: one line, the log named
        print(f"transport_loss: {exc}", file=sys.stderr)
        sys.exit(1)
