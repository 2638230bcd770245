"""``robot-instseg demo``: the node with the bundled model, fed synthetic scenes, watched live.

Starts seg_node in its own process, plays scenes into it at a camera's rate, prints one
line per second (fps, latency from camera stamp, instances per frame), saves a few overlay
PNGs from ~/debug_image, prints a summary and stops everything by itself.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np
import rclpy
from rclpy.node import Node

from robot_instseg.frame_sources import scenes
from robot_instseg.ros.background import BackgroundSpin
from robot_instseg.ros.node_process import NodeProcess
from robot_instseg.ros.play import Player, PlayOptions
from robot_instseg.ros.watch import Watcher

NAMESPACE = "/robot_instseg_demo"


def _line(label: str, frames: int, seconds: float, latencies: np.ndarray, instances: np.ndarray) -> str:
    if frames == 0:
        return f"{label}: no results yet"
    return (f"{label}: {frames / seconds:5.1f} fps  latency p50 {np.median(latencies):6.1f} ms  "
            f"p95 {np.percentile(latencies, 95):6.1f} ms  instances/frame {instances.mean():4.1f}")


def run_demo(model: Optional[str], out_dir: Path, rate_hz: float = 15.0, duration_s: float = 20.0,
             overlays: int = 4, scene_count: int = 8) -> int:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Reliable input: the player is reliable, so every frame reaches the node and what it
    # skips is counted by its mailbox (best-effort UDP would lose large frames silently).
    overrides = {"input_reliability": "reliable", **({"model_path": model} if model else {})}
    seg = NodeProcess(NAMESPACE, overrides=overrides, log_path=out_dir / "seg_node.log")
    rclpy.init()
    node = Node("robot_instseg_demo")
    spinning = BackgroundSpin(node)
    try:
        watcher = Watcher(node, seg.fqn, overlay_dir=out_dir, overlay_every_s=duration_s / (overlays + 1),
                          max_overlays=overlays)
        print(f"generating {scene_count} synthetic scenes ...", flush=True)
        frames = list(scenes(seed=2026, count=scene_count))
        if not seg.wait_until_publishing(node, 60.0):
            print(f"seg_node did not come up; its log: {out_dir / 'seg_node.log'}")
            print((out_dir / "seg_node.log").read_text()[-2000:])
            return 1
        player = Player(node, PlayOptions(topic=seg.topic("image"), rate_hz=rate_hz, duration_s=duration_s,
                                          loop=True))
        print(f"seg_node up; playing scenes at {rate_hz:g} Hz for {duration_s:g} s into {seg.topic('image')}",
              flush=True)
        stop = threading.Event()
        start = time.time()

        def report() -> None:
            last = time.time()
            while not stop.wait(1.0):
                now = time.time()
                frames_n, lat, inst = watcher.window(last)
                print(_line(f"t={now - start:4.0f}s", frames_n, now - last, lat, inst), flush=True)
                last = now

        reporter = threading.Thread(target=report, daemon=True)
        reporter.start()
        sent = player.play(frames)
        time.sleep(1.0)
        stop.set()
        reporter.join()
        total, lat, inst = watcher.window(start)
        diag = watcher.diagnostic_values()
        print("-" * 72)
        print(f"sent {sent} frames, got {total} InstanceArrays "
              f"(the node drops a frame when a newer one is waiting: {diag.get('frames_dropped', '?')} dropped)")
        print(_line("summary", total, duration_s, lat, inst) if total else "summary: no results")
        print(f"node diagnostics: {watcher.diagnostic.message if watcher.diagnostic else 'none received'}; "
              f"segment p50 {diag.get('segment_p50_ms', '?')} ms, rejected {diag.get('inputs_rejected', '?')}")
        for path in watcher.overlays:
            print(f"overlay: {path}")
        return 0 if total > 0 else 1
    finally:
        seg.stop()
        spinning.stop()
        node.destroy_node()
        rclpy.try_shutdown()
