"""The offline verbs' per-frame work, cut into units that one process or a Ray cluster runs.

rclpy-free and Ray-free at import: ``frame_stage`` is what each frame goes through (the node's
pipeline), ``work_units`` cuts inputs into independent pieces, ``ray_runner`` (imports ray
when called) runs those pieces on a cluster and hands them back in input order.
"""
