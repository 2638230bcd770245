"""``robot-instseg bench --ros``: camera stamp -> InstanceArray in another process, against the
transport floor (the same image's plain pub -> sub time, measured by a third process) and
the Segmenter's own time, all in one run. Also reports node memory at the start and end
and latency per time window, so a long run shows any growth.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import rclpy
from rclpy.node import Node

from robot_instseg.io.frame_sources import clip, scenes
from robot_instseg.ros.tools.node_process import watched_node
from robot_instseg.ros.tools.play import Player, PlayOptions, camera_names, cameras_override, play_together

NAMESPACE = "/robot_instseg_bench"


def _stats(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"n": 0}
    return {"n": int(values.size), "p50_ms": round(float(np.median(values)), 2),
            "p95_ms": round(float(np.percentile(values, 95)), 2), "max_ms": round(float(values.max()), 2)}


def floor_main(topic: str, duration_s: float) -> None:
    """Subscribe to the raw images and print their pub -> sub latencies (JSON on stdout)."""
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image

    from robot_instseg.ros.convert import stamp_seconds

    rclpy.init()
    node = Node("robot_instseg_floor")
    latencies: list[float] = []
    node.create_subscription(Image, topic, lambda m: latencies.append((time.time() - stamp_seconds(m.header)) * 1e3),
                             QoSProfile(depth=10))
    end = time.monotonic() + duration_s
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps(latencies))
    node.destroy_node()
    rclpy.try_shutdown()


def run_ros_bench(model: Optional[str], rate_hz: float = 10.0, duration_s: float = 20.0, width: int = 640,
                  height: int = 480, window_s: float = 30.0, log_dir: Path = Path("runs/bench_ros"),
                  cameras: int = 1, max_batch: Optional[int] = None, synchronised: bool = False,
                  depth: bool = False) -> dict:
    """Start a node serving ``cameras`` cameras, publish ``duration_s`` of frames at ``rate_hz`` on each, and report
    latency, rate and each camera's served share (several cameras: their frames go out together, as a robot's
    synchronised cameras do, each from its own publisher). ``depth``: each frame also sends its registered depth
    and CameraInfo (same stamp), and the report gives the share of frames with 3D, the node's depth wait, and the
    share of instances with a track id."""
    from robot_instseg.engine.segmenter import load_segmenter

    log_dir.mkdir(parents=True, exist_ok=True)
    names = camera_names(cameras)
    # with depth, a clip (objects that move and stay), so the share of them with ids means something
    frames = list(clip(seed=77, count=60, height=height, width=width, depth=True) if depth else
                  scenes(seed=77, count=8, height=height, width=width))
    overrides = {**({"model_path": model} if model else {}), "publish_markers": False}
    overrides.update(cameras_override(names))
    if max_batch is not None:
        overrides["max_batch"] = max_batch
    prefix = f"{names[0]}/" if names[0] else ""
    seg_topic = f"{NAMESPACE}/seg_node/{prefix}image"  # the first camera, as the node process names it
    floor = subprocess.Popen([sys.executable, "-m", "robot_instseg.ros.tools.bench", "floor", seg_topic,
                              str(duration_s + 15)], stdout=subprocess.PIPE, text=True)
    with watched_node(NAMESPACE, overrides, log_dir / "seg_node.log", name="robot_instseg_bench",
                      timeout_s=60.0, camera=names[0]) as (seg, node, watcher):
        from robot_instseg.ros.tools.watch import Watcher

        watchers = [watcher] + [Watcher(node, f"{seg.fqn}/{c}") for c in names[1:]]
        prefixes = [f"{c}/" if c else "" for c in names]
        players = [Player(node, PlayOptions(topic=seg.topic(f"{p}image"), rate_hz=rate_hz, duration_s=duration_s,
                                            loop=True, frame_id=c or "camera",
                                            depth_topic=seg.topic(f"{p}depth") if depth else None,
                                            camera_info_topic=seg.topic(f"{p}camera_info") if depth else None))
                   for c, p in zip(names, prefixes)]
        deadline = time.monotonic() + 10
        while node.count_subscribers(players[0].options.topic) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        rss_start = seg.rss_mb()
        start = time.time()
        sent = play_together(players, frames, synchronised)
        time.sleep(1.0)
        rss_end = seg.rss_mb()
        diag = watcher.diagnostic_values()
        _, e2e, _ = watcher.window(start)
        per_camera = []
        for name, camera_watcher, count in zip(names, watchers, sent):
            _, latency, _ = camera_watcher.window(start)
            status = watcher.diagnostic_values(f"{seg.fqn}: {name}" if name else "")
            per_camera.append({"camera": name or "camera", "sent": count, "received": int(latency.size),
                               "node_dropped": int(status.get("frames_dropped", 0)),
                               "served_share": round(latency.size / count, 3) if count else 0.0, **_stats(latency),
                               **camera_watcher.coverage(start),
                               "wait_for_depth_ms": status.get("wait_for_depth_ms", ""),
                               "lag_of_depth_p90_ms": status.get("lag_of_depth_p90_ms", ""),
                               "without_depth": {k[6:]: v for k, v in status.items() if k.startswith("depth_")}})
        windows = []
        for w0 in np.arange(start, start + duration_s, window_s):
            with watcher.lock:
                lat = np.array([r[1] for r in watcher.records if w0 <= r[0] < w0 + window_s])
            windows.append({"t0_s": round(float(w0 - start), 1), **_stats(lat)})
    floor_out, _ = floor.communicate(timeout=duration_s + 60)
    floor_lat = np.array(json.loads(floor_out.strip().splitlines()[-1])) if floor_out.strip() else np.array([])
    # The Segmenter alone, on the same frames, after the node has stopped (no contention).
    segmenter = load_segmenter(model)  # the CLI's defaults: CPU, score 0.25
    seg_ms = []
    for i in range(max(30, len(frames))):
        seg_ms.append(segmenter.segment(frames[i % len(frames)].rgb).times.total_ms)
    seg_ms = np.array(seg_ms[5:])
    shares = [c["served_share"] for c in per_camera]
    result = {"rate_hz": rate_hz, "duration_s": duration_s, "frame": [width, height], "cameras": cameras,
              "synchronised": synchronised, "depth": depth,
              "sent": sum(sent), "received": int(e2e.size) if cameras == 1 else sum(c["received"] for c in per_camera),
              "node_dropped": sum(c["node_dropped"] for c in per_camera),
              "batch_sizes_seen": diag.get("batch_sizes_seen", ""),
              "end_to_end": _stats(e2e), "per_camera": per_camera,
              "served_share_spread": round(max(shares) - min(shares), 3) if shares else 0.0,
              "transport_floor": _stats(floor_lat),
              "segmenter": _stats(seg_ms), "node_segment_p50_ms": diag.get("segment_p50_ms"),
              "node_rss_mb": {"start": round(rss_start, 1), "end": round(rss_end, 1)}, "windows": windows}
    if e2e.size and floor_lat.size:
        result["overhead_p50_ms"] = round(float(np.median(e2e) - np.median(floor_lat) - np.median(seg_ms)), 2)
    return result


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "floor":
    floor_main(sys.argv[2], float(sys.argv[3]))
