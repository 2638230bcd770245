"""Runtime backends, one module each; ``create_backend`` picks one from a BackendConfig."""

from __future__ import annotations

from pathlib import Path

from robot_instseg.engine.backends.base import Backend, BackendConfig, TensorInfo, parse_providers
from robot_instseg.engine.errors import ModelError

BACKENDS = ("onnxruntime", "tensorrt")


def create_backend(path: Path, config: BackendConfig) -> Backend:
    """The runtime ``config.backend`` names, loaded with the model at ``path``."""
    if config.backend == "onnxruntime":
        from robot_instseg.engine.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, config)
    if config.backend == "tensorrt":
        from robot_instseg.engine.backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(path, config)
    raise ModelError(f"unknown backend {config.backend!r}; choose one of {BACKENDS}")


__all__ = ["Backend", "BackendConfig", "TensorInfo", "create_backend", "parse_providers", "BACKENDS"]
