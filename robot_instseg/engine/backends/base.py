"""What every runtime backend offers the Segmenter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol

import numpy as np

from robot_instseg.engine.errors import ModelError


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape (None for a dynamic axis) and numpy dtype of one model input or output."""

    name: str
    shape: tuple[Optional[int], ...]
    dtype: str


@dataclass(frozen=True)
class BackendConfig:
    """Runtime choice and its options (the node's backend, providers, device, fp16, cache, threads)."""

    backend: str = "onnxruntime"
    providers: tuple[str, ...] = ("cpu",)
    device_id: int = 0
    fp16: bool = False
    engine_cache_dir: Optional[str] = None
    num_threads: int = 0
    warmup_runs: int = 1
    # onnxruntime's CPU threads spin while a run is in flight and stop when it returns (left spinning after it,
    # onnxruntime's default, they took the cores from the node's own host work); False: they never spin, which
    # frees CPU for other processes at a slower session.run (README "Host work per frame")
    spin_wait: bool = True


def parse_providers(text: str) -> tuple[str, ...]:
    """"tensorrt, cuda,cpu" -> ("tensorrt", "cuda", "cpu"): the one parser for the node and the CLI."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


class Backend(Protocol):
    """A loaded model that maps named input arrays to named output arrays."""

    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    metadata: dict[str, str]
    description: str  # e.g. "onnxruntime 1.20 CPUExecutionProvider"
    device: str  # where the model runs: "cuda" or "cpu"

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def warmup(self, feeds: dict[str, np.ndarray]) -> None: ...


def check_model_file(path: Path) -> Path:
    """Resolve ``path``, raising ModelError naming it when it is missing or not a file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelError(f"model file {path} does not exist")
    if not path.is_file():
        raise ModelError(f"model path {path} is not a file")
    if path.stat().st_size == 0:
        raise ModelError(f"model file {path} is empty")
    return path.resolve()
