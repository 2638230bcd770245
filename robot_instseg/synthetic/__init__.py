"""Seeded synthetic scenes: images with exact masks, for tests, benchmarks and training. No torch."""

from robot_instseg._exports import public_api

__all__, __getattr__ = public_api(__name__, """
    scenes:        Scene SceneObject generate_scene scene_annotations object_annotations
    occlusion:     Occlusion occlusions occlusion_rate
    dataset:       write_dataset
    sample_images: sample_frame
""")
