"""Seeded synthetic scenes: images with exact masks, for tests, benchmarks and training. No torch."""

from robot_instseg._exports import exports, lazy_exports

_HOMES = exports(
    scenes="Scene SceneObject generate_scene scene_annotations write_dataset",
    sample_images="sample_frame",
)
__all__ = sorted(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
