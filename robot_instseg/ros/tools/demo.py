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

from robot_instseg.io.frame_sources import scenes
from robot_instseg.ros.tools.node_process import watched_node
from robot_instseg.ros.tools.play import Player, PlayOptions, camera_names, cameras_override

NAMESPACE = "/robot_instseg_demo"


def _line(label: str, frames: int, seconds: float, latencies: np.ndarray, instances: np.ndarray,
          distances: np.ndarray) -> str:
    if frames == 0:
        return f"{label}: no results yet"
    depth = (f"  3D {len(distances) / max(instances.sum(), 1):4.0%} at {np.min(distances):.2f}-"
             f"{np.max(distances):.2f} m" if len(distances) else "  3D none")
    return (f"{label}: {frames / seconds:5.1f} fps  latency p50 {np.median(latencies):6.1f} ms  "
            f"p95 {np.percentile(latencies, 95):6.1f} ms  instances/frame {instances.mean():4.1f}{depth}")


def run_demo(model: Optional[str], out_dir: Path, rate_hz: float = 15.0, duration_s: float = 20.0,
             overlays: int = 4, scene_count: int = 8, cameras: int = 1) -> int:
    """Start a node, play synthetic scenes into it and save what it published under ``out_dir``; with ``cameras``
    > 1, one node serves cameras cam0.. (each RGB-D, free-running at ``rate_hz``) and each gets a summary line."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    overrides: dict = {"model_path": model} if model else {}
    names = camera_names(cameras)
    overrides.update(cameras_override(names))
    print(f"generating {scene_count} synthetic scenes ...", flush=True)
    frames = list(scenes(seed=2026, count=scene_count, depth=True))
    try:
        with watched_node(NAMESPACE, overrides, out_dir / "seg_node.log", name="robot_instseg_demo",
                          timeout_s=60.0, camera=names[0], overlay_dir=out_dir,
                          overlay_every_s=duration_s / (overlays + 1), max_overlays=overlays) as (seg, node, watcher):
            if cameras > 1:
                return _play_cameras(seg, node, watcher, names, frames, rate_hz, duration_s)
            return _play_and_watch(seg, node, watcher, frames, rate_hz, duration_s)
    except RuntimeError as exc:
        print(exc)
        print((out_dir / "seg_node.log").read_text()[-2000:])
        return 1


def _play_cameras(seg, node, first_watcher, names: list, frames, rate_hz: float, duration_s: float) -> int:
    """Several RGB-D cameras into one node: a summary line per camera, then the node's own status."""
    from robot_instseg.ros.tools.play import play_together
    from robot_instseg.ros.tools.watch import Watcher

    watchers = [first_watcher] + [Watcher(node, f"{seg.fqn}/{c}") for c in names[1:]]
    players = [Player(node, PlayOptions(topic=seg.topic(f"{c}/image"), rate_hz=rate_hz, duration_s=duration_s,
                                        loop=True, frame_id=c, depth_topic=seg.topic(f"{c}/depth"),
                                        camera_info_topic=seg.topic(f"{c}/camera_info"))) for c in names]
    print(f"seg_node up; {len(names)} cameras ({', '.join(names)}) at {rate_hz:g} Hz each for {duration_s:g} s",
          flush=True)
    start = time.time()
    sent = play_together(players, frames)
    time.sleep(1.0)
    print("-" * 72)
    total = 0
    for name, watcher, count in zip(names, watchers, sent):
        got, lat, inst = watcher.window(start)
        total += got
        print(f"{name}: sent {count}, got {got}; " + _line("summary", got, duration_s, lat, inst,
                                                              watcher.distances_since(start)))
    diag = first_watcher.diagnostic_values()
    print(f"node: {first_watcher.diagnostic.message if first_watcher.diagnostic else 'no diagnostics received'}; "
          f"batch sizes seen {diag.get('batch_sizes_seen', '?')}")
    return 0 if total > 0 else 1


def _play_and_watch(seg, node, watcher, frames, rate_hz: float, duration_s: float) -> int:
    """Play the scenes, print a line per second and a summary."""
    player = Player(node, PlayOptions(topic=seg.topic("image"), rate_hz=rate_hz, duration_s=duration_s,
                                      loop=True, depth_topic=seg.topic("depth"),
                                      camera_info_topic=seg.topic("camera_info")))
    print(f"seg_node up; playing scenes at {rate_hz:g} Hz for {duration_s:g} s into {seg.topic('image')}",
          flush=True)
    stop = threading.Event()
    start = time.time()

    def report() -> None:
        last = time.time()
        while not stop.wait(1.0):
            now = time.time()
            frames_n, lat, inst = watcher.window(last)
            print(_line(f"t={now - start:4.0f}s", frames_n, now - last, lat, inst, watcher.distances_since(last)),
                  flush=True)
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
    print(_line("summary", total, duration_s, lat, inst, watcher.distances_since(start)) if total
          else "summary: no results")
    print(f"depth: {diag.get('frames_with_3d', '0')} frames with 3D; without: "
          f"{', '.join(f'{k[6:]} {v}' for k, v in diag.items() if k.startswith('depth_')) or 'none'}")
    print(f"node diagnostics: {watcher.diagnostic.message if watcher.diagnostic else 'none received'}; "
          f"segment p50 {diag.get('segment_p50_ms', '?')} ms, rejected {diag.get('inputs_rejected', '?')}")
    for path in watcher.overlays:
        print(f"overlay: {path}")
    return 0 if total > 0 else 1
