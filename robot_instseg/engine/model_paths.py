"""Where the bundled default model lives (the source tree's models/ or the installed share), and
the content hash that names a model file in engine caches and bag metadata."""

from __future__ import annotations

import hashlib
from pathlib import Path

from robot_instseg.engine.errors import ModelError

DEFAULT_MODEL_NAME = "instseg_tabletop.onnx"


def models_dirs() -> list[Path]:
    """Folders that may hold the bundled model: the source tree first, then the installed share."""
    dirs = [Path(__file__).resolve().parents[2] / "models"]  # the source tree: repo/robot_instseg/engine/
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return dirs
    try:
        dirs.append(Path(get_package_share_directory("robot_instseg")) / "models")
    except PackageNotFoundError:
        pass
    return dirs


def default_model_path() -> Path:
    """The bundled model file, or ModelError listing where it was looked for."""
    searched = []
    for folder in models_dirs():
        candidate = folder / DEFAULT_MODEL_NAME
        if candidate.is_file():
            return candidate
        searched.append(str(candidate))
    raise ModelError(f"no bundled model found (looked at {', '.join(searched)}); pass a model path")


def config_file(name: str) -> Path:
    """config/``name`` of the source tree or the installed share."""
    for folder in models_dirs():
        candidate = folder.parent / "config" / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"config/{name} not found in the source tree or share/robot_instseg")


def default_params_file() -> Path:
    """config/params.yaml of the source tree or the installed share."""
    return config_file("params.yaml")


def model_sha256(path: Path) -> str:
    """The sha256 of a model file, or "" for a model that is not one file (recorded beside the model's path)."""
    path = Path(path)
    return file_sha256(path) if path.is_file() else ""


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in ``chunk``-sized blocks (models are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
