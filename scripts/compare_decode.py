#!/usr/bin/env python3
"""Compare our fast mask decode with the framework's reference decode on real images.

    python scripts/compare_decode.py --images DIR --coco GT.json [--model M] [--conf 0.01]
    python scripts/compare_decode.py --scenes 5150 --count 20 --size 375x500 --size 720x1280

Prints per-instance IoU of fast vs reference masks (median, min, the worst five) and, with
--coco, segm AP of the reference masks, our raw masks and our visible masks. --size resizes
every image first (several sizes: letterboxed and not); AP is only scored at native size.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HxW, e.g. 480x640, got {text!r}")
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return h, w


def frames_of(args: argparse.Namespace, gt):
    """(name, RGB image, COCO image id or None) for every input image."""
    import cv2

    from robot_instseg.io.frame_sources import list_images, scenes

    if args.scenes is not None:
        for frame in scenes(seed=args.scenes, count=args.count):
            yield frame.name, frame.rgb, None
        return
    folder = Path(args.images)
    ids = {}
    if gt is not None:
        ids = {Path(img["file_name"]).name: int(img["id"]) for img in gt.loadImgs(gt.getImgIds())}
    for path in list_images(folder)[: args.max_images]:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            print(f"compare_decode: skipped {path}: not a readable image", file=sys.stderr)
            continue
        yield path.name, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), ids.get(path.name)


def resized(frames, size):
    import cv2

    for name, image, _ in frames:
        yield f"{name}@{size[0]}x{size[1]}", cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA), None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="ONNX model (default: the bundled model)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", help="folder of images")
    source.add_argument("--scenes", type=int, help="synthetic scenes of this seed")
    parser.add_argument("--count", type=int, default=20, help="--scenes: how many")
    parser.add_argument("--max-images", type=int, default=1000)
    parser.add_argument("--coco", default=None, help="ground truth for --images: also score segm AP per mask kind")
    parser.add_argument("--conf", type=float, default=0.01, help="score threshold (low: AP integrates over scores)")
    parser.add_argument("--size", type=parse_size, action="append", default=[], help="also at HxW (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    from robot_instseg.dataset.decode_parity import compare_decodes
    from robot_instseg.dataset.evaluate import load_coco_quiet
    from robot_instseg.engine import Segmenter, SegmenterConfig
    from robot_instseg.engine.errors import EngineError
    from robot_instseg.engine.model_paths import default_model_path

    try:
        if args.images and not Path(args.images).is_dir():
            raise ValueError(f"{args.images} is not a directory")
        gt = load_coco_quiet(args.coco) if args.coco else None
        segmenter = Segmenter(args.model or default_model_path(), SegmenterConfig(score_threshold=args.conf))
        out = {"model": str(segmenter.model_path), "decoder": segmenter.decoder.name,
               "native": compare_decodes(segmenter, frames_of(args, gt), gt)}
        for size in args.size:
            out[f"{size[0]}x{size[1]}"] = compare_decodes(segmenter, resized(frames_of(args, None), size))
    except (EngineError, ValueError, OSError) as exc:
        print(f"compare_decode: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"model {out['model']} ({out['decoder']})")
    for key, summary in out.items():
        if not isinstance(summary, dict):
            continue
        p = summary["parity"]
        if not p.get("instances"):
            print(f"{key:>10}: {p['frames']} frames, no instances")
            continue
        print(f"{key:>10}: {p['frames']} frames, {p['instances']} instances, fast vs reference IoU median "
              f"{p['median_iou']:.5f} min {p['min_iou']:.5f} ({p['exact']} identical)")
        for kind in ("reference", "raw", "visible"):
            if kind in summary:
                m = summary[kind]
                print(f"{'':>12}{kind:<10} segm AP {m['AP']:.4f}  AP50 {m['AP50']:.4f}  AP75 {m['AP75']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
