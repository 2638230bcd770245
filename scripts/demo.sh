#!/usr/bin/env bash
# `make demo`: the node on the bundled model, fed synthetic scenes at 15 Hz as a camera
# would, watched live (a line per second, then a summary and overlay PNGs in demo_out/).
# It runs in a ROS domain of its own on loopback and stops by itself in well under a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 100 ))}"
echo "== robot-instseg bench: the Segmenter on the bundled model vs raw session.run, in one run"
robot-instseg bench --runs 30 --warmup 3
echo "== robot-instseg demo: seg_node + bundled model + synthetic camera at 15 Hz (ROS_DOMAIN_ID=$ROS_DOMAIN_ID)"
timeout 90 robot-instseg demo --rate 15 --duration 20 --out demo_out
echo "== demo done: overlays and the node's log in demo_out/"
