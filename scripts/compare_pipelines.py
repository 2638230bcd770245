#!/usr/bin/env python3
"""Compare the device pipeline (torch) with the host pipeline (numpy) on the same frames.

    python scripts/compare_pipelines.py                                   # CPU torch, bundled model
    python scripts/compare_pipelines.py --providers cuda,cpu --model M    # on a GPU: device = CUDA

The host side always runs on the CPU provider; the device side on --providers (its pipeline on
that runtime's device). Prints identical-selection frames, per-instance mask IoU (median, min)
and label-image agreement; exits 1 when the selection differs anywhere or a mask IoU is below
--min-iou. On a GPU, cuDNN convolutions may round differently from the CPU, so a score a hair
from a threshold can flip a box: run with --same-runtime to feed both pipelines one provider.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="ONNX model (default: the bundled model)")
    parser.add_argument("--providers", default="cpu", help="the device side's providers, e.g. cuda,cpu")
    parser.add_argument("--same-runtime", action="store_true", help="the host side uses --providers too")
    parser.add_argument("--conf", type=float, default=0.01)
    parser.add_argument("--scenes", type=int, default=5150, help="seed of the synthetic scenes")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--min-iou", type=float, default=0.995)
    args = parser.parse_args(argv)

    from robot_instseg.engine.backends import BackendConfig, parse_providers
    from robot_instseg.engine.device.parity import compare_pipelines
    from robot_instseg.engine.errors import EngineError
    from robot_instseg.engine.segmenter import SegmenterConfig, load_segmenter
    from robot_instseg.io.frame_sources import scenes

    device_runtime = BackendConfig(providers=parse_providers(args.providers))
    host_runtime = device_runtime if args.same_runtime else BackendConfig()
    try:
        host = load_segmenter(args.model, SegmenterConfig(score_threshold=args.conf, runtime=host_runtime,
                                                          pipeline="host"))
        device = load_segmenter(args.model, SegmenterConfig(score_threshold=args.conf, runtime=device_runtime,
                                                            pipeline="device"))
    except EngineError as exc:
        print(f"compare_pipelines: {exc}", file=sys.stderr)
        return 2
    images = [(f.rgb, "rgb") for f in scenes(seed=args.scenes, count=args.count)]
    summary = compare_pipelines(host, device, images)
    summary.update(host=host.backend.description, device=f"{device.backend.description}, "
                   f"{device.pipeline_device} pipeline")
    print(json.dumps(summary, indent=2))
    ok = not summary["mismatched_frames"] and summary["min_iou"] >= args.min_iou
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
