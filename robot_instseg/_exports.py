"""Lazy public API for the subpackages: ``from robot_instseg.recording import Recorder`` works,
but importing a package does not import all its modules (and their heavy dependencies:
onnxruntime, rosbags, torch) until a name is asked for."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` that imports ``name`` from ``package.homes[name]`` on first use."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{homes[name]}"), name)

    return __getattr__


def exports(**modules: str) -> dict[str, str]:
    """``exports(recorder="Recorder Capture")`` -> {"Recorder": "recorder", "Capture": "recorder"}."""
    return {name: module for module, names in modules.items() for name in names.split()}
