"""Aligned depth + intrinsics -> per-instance 3D (centroid, extent, oriented box, points). No rclpy."""

from robot_instseg._exports import public_api

__all__, __getattr__ = public_api(__name__, """
    intrinsics:  Intrinsics
    depth_image: depth_in_metres registered_to DEPTH_ENCODINGS
    fusion:      Instance3D FrameFusion fuse naive_centroid
    support_plane: SupportPlane fit_support_plane
    completion:  SurfaceCompletion
""")
