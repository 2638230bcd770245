"""Lazy public API for the subpackages: ``from robot_instseg.recording import Recorder`` works,
but importing a package does not import all its modules (and their heavy dependencies:
onnxruntime, rosbags, torch) until a name is asked for."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def public_api(package: str, table: str) -> tuple[list[str], Callable[[str], Any]]:
    """``__all__`` and a module-level ``__getattr__`` for ``package`` from a table of lines
    ``module: Name Name ...``; each name is imported from ``package.module`` on first use."""
    homes: dict[str, str] = {}
    for line in table.strip().splitlines():
        module, names = line.split(":")
        homes.update((name, module.strip()) for name in names.split())

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{homes[name]}"), name)

    return sorted(homes), __getattr__
