"""Image in, Detections out: preprocessing, runtimes, output decoders, mask sampling, overlap
ownership, the per-frame pipeline and the Segmenter bench. numpy / opencv / onnxruntime; no ROS."""

from robot_instseg._exports import exports, lazy_exports

_HOMES = exports(
    errors="EngineError InputError ModelError",
    types="Detections",
    segmenter="Segmenter SegmenterConfig SegmentResult load_segmenter",
    frame_pipeline="FrameOutput segment_frame",
    model_paths="default_model_path default_params_file",
    ownership="Ownership",
    bench="BenchReport run_benchmark",
    postprocess="PostprocessSettings",
)
__all__ = sorted(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
