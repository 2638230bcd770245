"""Image in, Detections out: preprocessing, runtimes, output decoders, mask sampling, overlap
ownership, the per-frame pipeline and the Segmenter bench. numpy / opencv / onnxruntime; no ROS."""

from robot_instseg._exports import public_api

__all__, __getattr__ = public_api(__name__, """
    errors:         EngineError InputError ModelError
    types:          Detections
    class_names:    parse_class_filter resolve_class_names
    segmenter:      Segmenter SegmenterConfig SegmentResult load_segmenter
    frame_pipeline: FrameOutput segment_frame
    model_paths:    default_model_path default_params_file
    ownership:      Ownership
    bench:          BenchReport run_benchmark
    postprocess:    PostprocessSettings
""")
