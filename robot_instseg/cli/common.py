"""What every verb shares: exit codes, the one-line error, and the model arguments."""

from __future__ import annotations

import argparse
import logging
from typing import Optional

from robot_instseg.engine.backends import BACKENDS
from robot_instseg.engine.decoders import DECODERS
from robot_instseg.engine.postprocess import PostprocessSettings
from robot_instseg.engine.segmenter import PIPELINES

_THRESHOLDS = PostprocessSettings()  # the defaults the node uses too

LOG = logging.getLogger("robot_instseg")

# Exit codes: 0 done; 1 internal error (a bug: -v shows the traceback); 2 bad input or arguments
# (a file missing, damaged or malformed; argparse uses 2 too); 3 nothing could be processed.
EXIT_INTERNAL, EXIT_INPUT, EXIT_NOTHING = 1, 2, 3


class CliError(Exception):
    """A refusal the user can act on: printed as one line on stderr, exit ``code``."""

    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


def segmenter_args(parser: argparse.ArgumentParser, model_required: bool = False) -> None:
    """The model and runtime arguments every model-running verb takes."""
    parser.add_argument("--model", required=model_required, default=None,
                        help="ONNX model or TensorRT engine (default: the bundled model)")
    parser.add_argument("--format", default="auto", choices=("auto", *DECODERS), help="output decoder")
    parser.add_argument("--labels", default=None, help="class-name file, one per line")
    parser.add_argument("--backend", default=BACKENDS[0], choices=BACKENDS)
    parser.add_argument("--providers", default="cpu", help="ONNX Runtime providers in order, e.g. tensorrt,cuda,cpu")
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--device-id", type=int, default=0, help="GPU index for CUDA / TensorRT")
    parser.add_argument("--pipeline", default="auto", choices=PIPELINES,
                        help="stages around the runtime: host (numpy) or device (torch on the runtime's device); "
                             "auto = device when the runtime is on CUDA")
    parser.add_argument("--threads", type=int, default=0, help="CPU inference threads (0 = runtime default)")
    parser.add_argument("--no-spin", action="store_true",
                        help="onnxruntime's CPU threads never spin, not even during a run (node: cpu_spin_wait)")
    parser.add_argument("--conf", type=float, default=_THRESHOLDS.score_threshold, help="score threshold")
    parser.add_argument("--iou", type=float, default=_THRESHOLDS.iou_threshold, help="NMS IoU threshold")
    parser.add_argument("--max-det", type=int, default=_THRESHOLDS.max_detections)
    parser.add_argument("--classes", default="", help="comma-separated class names or ids to keep")


def make_segmenter(args: argparse.Namespace, weak_score_threshold: Optional[float] = None):
    """The Segmenter the model arguments describe (the bundled model when --model is not given);
    ``weak_score_threshold``: also decode down to it for a tracker (SegmenterConfig)."""
    from robot_instseg.engine.segmenter import load_segmenter

    return load_segmenter(args.model, segmenter_config(args, weak_score_threshold))


def segmenter_config(args: argparse.Namespace, weak_score_threshold: Optional[float] = None):
    """The SegmenterConfig of the model arguments (what a Ray worker rebuilds the driver's Segmenter from)."""
    from robot_instseg.engine.backends import BackendConfig, parse_providers
    from robot_instseg.engine.class_names import parse_class_filter
    from robot_instseg.engine.segmenter import SegmenterConfig

    runtime = BackendConfig(backend=args.backend, providers=parse_providers(args.providers), fp16=args.fp16,
                            num_threads=args.threads, device_id=args.device_id,
                            spin_wait=not args.no_spin)
    return SegmenterConfig(
        model_format=args.format, labels_path=args.labels, runtime=runtime, pipeline=args.pipeline,
        score_threshold=args.conf, iou_threshold=args.iou, max_detections=args.max_det,
        class_filter=parse_class_filter(args.classes), weak_score_threshold=weak_score_threshold)
