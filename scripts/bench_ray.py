"""``run`` on Ray Data against the plain single-process ``run``, on the same frames, measured in one run
(issue 31's ratios): a folder of images to COCO JSON and a bag to a bag, with 1 and 2 Ray workers.

For each configuration: the wall time of the whole command (Ray started and stopped, models loaded,
output written), the start-up until the first frame came back, and the throughput after it (each worker's
frames over its own first-to-last time, summed: the verb's closing line). Each Ray output is compared byte
for byte (JSON) or message for message (bag) with the plain one. ``--repeat N`` runs the whole set N
times, interleaved, and keeps each configuration's median.

    python scripts/bench_ray.py [--frames 300] [--repeat 1] [--work DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def cli(*args: str, quiet: bool = True) -> tuple[float, str]:
    """(seconds ``robot-instseg ARGS`` took, its stderr); a failure stops the benchmark with its output."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "robot_instseg.cli", *args, *(["--quiet"] if quiet else [])],
                          capture_output=True, text=True, env={**os.environ, **ENV}, timeout=1800)
    if done.returncode != 0:
        sys.exit(f"robot-instseg {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stderr


def rates(stderr: str) -> tuple[float, float]:
    """(start-up s, frames/s after it) from the verb's closing line (``WorkerProgress.summary``)."""
    found = re.findall(r"frames per second: first frame after ([\d.]+) s, then ([\d.]+) frames/s", stderr)
    if not found:
        sys.exit(f"no rates line in:\n{stderr[-2000:]}")
    return float(found[-1][0]), float(found[-1][1])


def make_inputs(work: Path, frames: int) -> tuple[Path, Path]:
    """A folder of ``frames`` frames of tracked scene clips (640x480), and a bag of the same frames."""
    clips = work / "clips"
    if not clips.exists():
        count = -(-frames // 50) + 1  # clips drop a few frames
        cli("scenes", "--sequence", "--count", str(count), "--frames", "60", "--seed", "31", "--out", str(clips))
    images = sorted((clips / "images").rglob("*.png"))[:frames]
    if len(images) < frames:
        sys.exit(f"only {len(images)} frames generated; need {frames}")
    folder, bag = work / f"folder_{frames}", work / f"bag_{frames}.mcap"
    if not folder.exists():
        folder.mkdir()
        for i, path in enumerate(images):
            shutil.copy(path, folder / f"{i:05d}.png")
    if not bag.exists():
        cli("run", str(folder), "--out", str(bag), "--no-track", "--fps", "15")
    return folder, bag


def messages(path: Path) -> list:
    from rosbags.highlevel import AnyReader

    with AnyReader([path]) as reader:
        return [(c.topic, t, bytes(d)) for c, t, d in reader.messages()]


CONFIGS = {"plain": (), "ray_1": ("--ray", "--workers", "1"), "ray_2": ("--ray", "--workers", "2")}


def bench(work: Path, frames: int, repeat: int) -> dict:
    folder, bag = make_inputs(work, frames)
    report: dict = {"frames": frames, "cpus": os.cpu_count(), "repeat": repeat, "inputs": {}}
    for kind, source, suffix in (("folder_to_json", folder, ".json"), ("bag_to_bag", bag, ".mcap")):
        runs: dict[str, list] = {config: [] for config in CONFIGS}
        for _ in range(repeat):
            for config, extra in CONFIGS.items():
                out = work / f"out_{kind}_{config}{suffix}"
                if out.exists():
                    out.unlink()
                wall, stderr = cli("run", str(source), "--out", str(out), "--window-s", "2", *extra, quiet=False)
                startup, fps = rates(stderr)
                runs[config].append((wall, startup, fps))
                print(f"{kind:15} {config:6} wall {wall:6.1f} s, first frame after {startup:5.1f} s, then "
                      f"{fps:5.1f} frames/s", file=sys.stderr)
        rows = {}
        for config, values in runs.items():
            wall, startup, fps = (statistics.median(v[i] for v in values) for i in range(3))
            rows[config] = {"wall_s": round(wall, 2), "startup_s": round(startup, 2), "fps": round(fps, 2)}
        plain = work / f"out_{kind}_plain{suffix}"
        for config in ("ray_1", "ray_2"):
            other = work / f"out_{kind}_{config}{suffix}"
            same = other.read_bytes() == plain.read_bytes() if suffix == ".json" else messages(other) == messages(plain)
            rows[config].update(identical_to_plain=same,
                                fps_vs_plain=round(rows[config]["fps"] / rows["plain"]["fps"], 3),
                                wall_vs_plain=round(rows[config]["wall_s"] / rows["plain"]["wall_s"], 3))
        report["inputs"][kind] = rows
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=1, help="runs of the whole set; medians are kept")
    parser.add_argument("--work", default=None, help="keep inputs and outputs here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = parser.parse_args()
    if args.frames < 2 or args.repeat < 1:
        parser.error("--frames must be >= 2 and --repeat >= 1")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        report = bench(work, args.frames, args.repeat)
    if args.json:
        print(json.dumps(report))
        return 0
    for kind, rows in report["inputs"].items():
        print(f"{kind}: {args.frames} frames, {report['cpus']} CPUs, median of {args.repeat}")
        for config, row in rows.items():
            extra = "" if config == "plain" else \
                (f"  x{row['fps_vs_plain']:.2f} of plain's frames/s, wall x{row['wall_vs_plain']:.2f}, "
                 f"identical: {row['identical_to_plain']}")
            print(f"  {config:6} wall {row['wall_s']:6.1f} s  first frame {row['startup_s']:5.1f} s  then "
                  f"{row['fps']:6.1f} frames/s{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
