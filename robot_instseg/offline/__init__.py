"""The offline verbs' per-frame work, cut into units that one process or a Ray cluster runs.

rclpy-free and Ray-free at import: ``frame_stage`` is what each frame goes through (the node's
pipeline), ``work_units`` cuts inputs into independent pieces, ``unit_runner`` runs them in order
here, and ``ray_runner`` (the only module that imports ray) runs them on Ray Data actors and hands
them back in input order, so whatever the caller does in order (tracking, writing) is unchanged."""

from robot_instseg._exports import public_api

__all__, __getattr__ = public_api(__name__, """
    frame_stage:  SegmentedFrame segment_one segment_all frame_stamp track
    work_units:   WorkUnit Plan plan_units expand_inputs unit_frames image_units
    unit_job:     RayOptions UnitError UnitJob
    unit_runner:  WorkerProgress run_units items_only unit_stream
    jobs:         ModelSpec SegmentJob
    ray_runner:   RayUnavailable ray_units
""")
