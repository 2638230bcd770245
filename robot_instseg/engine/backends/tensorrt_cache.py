"""On-disk cache of built TensorRT engines, keyed by model hash, TensorRT version, GPU and precision.

Kept apart from the TensorRT backend so it is testable on machines without TensorRT: an
engine is reused only while every part of its key still matches; otherwise it is stale.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class EngineKey:
    """Everything a serialized engine depends on; a change in any part makes it unusable."""

    model_sha256: str
    tensorrt_version: str
    gpu_name: str
    fp16: bool

    @property
    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]




def engine_paths(cache_dir: Path, model_path: Path, key: EngineKey) -> tuple[Path, Path]:
    """(engine file, sidecar JSON) for ``model_path`` under ``key`` in ``cache_dir``."""
    gpu = re.sub(r"[^A-Za-z0-9]+", "-", key.gpu_name).strip("-").lower() or "gpu"
    stem = f"{Path(model_path).stem}-{gpu}-{'fp16' if key.fp16 else 'fp32'}-{key.digest}"
    return Path(cache_dir) / f"{stem}.engine", Path(cache_dir) / f"{stem}.json"


def lookup(cache_dir: Path, model_path: Path, key: EngineKey) -> tuple[Optional[Path], str]:
    """Return (engine path or None, reason). None means build: missing, stale or damaged."""
    engine, sidecar = engine_paths(cache_dir, model_path, key)
    if not engine.is_file():
        return None, f"no cached engine at {engine}"
    if engine.stat().st_size == 0:
        return None, f"cached engine {engine} is empty"
    try:
        recorded = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None, f"cached engine {engine} has no readable record {sidecar.name}"
    if recorded.get("key") != asdict(key):
        return None, f"cached engine {engine} was built for {recorded.get('key')}, now {asdict(key)}"
    if recorded.get("size") != engine.stat().st_size:
        return None, f"cached engine {engine} is truncated or altered (size differs from its record)"
    return engine, "cached engine matches"


def store(cache_dir: Path, model_path: Path, key: EngineKey, serialized: bytes) -> Path:
    """Write an engine and its record atomically (temp file + rename), return its path."""
    engine, sidecar = engine_paths(cache_dir, model_path, key)
    engine.parent.mkdir(parents=True, exist_ok=True)
    tmp = engine.with_suffix(".engine.tmp")
    tmp.write_bytes(serialized)
    tmp.replace(engine)
    record = {"key": asdict(key), "size": len(serialized), "model": str(model_path), "built_at": time.time()}
    tmp_record = sidecar.with_suffix(".json.tmp")
    tmp_record.write_text(json.dumps(record, indent=1))
    tmp_record.replace(sidecar)
    return engine
