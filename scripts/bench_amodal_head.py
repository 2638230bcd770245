"""What the amodal head costs (issue 32): raw ``session.run`` and host decode of a model with the head against
the same network without it, interleaved in one run so the ratio survives a shared machine.

The pair is the bundled model and the bundled network with the head grown on (``test/amodal_fixtures.py``), or
``--with-head M`` (a trained export) against ``--without-head`` (default: the bundled model).

    python scripts/bench_amodal_head.py [--with-head runs/amodal/instseg_tabletop_amodal.onnx] [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-head", default=None, help="an export with the amodal head (default: grown here)")
    parser.add_argument("--without-head", default=str(REPO / "models" / "instseg_tabletop.onnx"))
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    from robot_instseg.engine.frame_pipeline import resolved
    from robot_instseg.engine.occlusion import occlusion_order
    from robot_instseg.engine.segmenter import SegmenterConfig, load_segmenter
    from robot_instseg.synthetic.scenes import generate_scene, scene_seed

    with tempfile.TemporaryDirectory() as tmp:
        with_head = args.with_head
        if with_head is None:
            sys.path.insert(0, str(REPO / "test"))
            from amodal_fixtures import grown_bundled_model

            with_head = str(grown_bundled_model(Path(tmp) / "grown.onnx"))
        models = {"without": load_segmenter(args.without_head, SegmenterConfig()),
                  "with": load_segmenter(with_head, SegmenterConfig())}
        images = [generate_scene(scene_seed(77, i), min_visible=0.1).render_rgb() for i in range(8)]
        feeds = {k: [m.input_feed(im) for im in images] for k, m in models.items()}
        times: dict[str, list[float]] = {f"{k}_{s}": [] for k in models for s in ("session", "host")}
        for run in range(args.runs + 10):
            for key, segmenter in models.items():
                feed = feeds[key][run % len(images)]
                t0 = time.perf_counter()
                segmenter.backend.run(feed)
                t1 = time.perf_counter()
                result = segmenter.segment(images[run % len(images)])
                output = resolved(result)
                if output.visible.has_amodal:
                    occlusion_order(output.visible)
                t2 = time.perf_counter()
                if run >= 10:
                    times[f"{key}_session"].append((t1 - t0) * 1e3)
                    times[f"{key}_host"].append((t2 - t1) * 1e3 - result.times.inference_ms)
        report = {k: round(float(np.median(v)), 3) for k, v in times.items()}
        ratio = np.asarray(times["with_session"]) / np.asarray(times["without_session"])
        report["session_with_over_without_paired_median"] = round(float(np.median(ratio)), 4)
        report["host_extra_ms"] = round(report["with_host"] - report["without_host"], 3)
        report["runs"], report["with_head"] = args.runs, with_head
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
