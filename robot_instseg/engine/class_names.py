"""Where a model's class names come from: a setting, a labels file, or the ONNX metadata.

Ultralytics writes ``names`` as a Python dict literal (``{0: 'person', ...}``), not JSON,
so it is read with ``ast.literal_eval`` (which evaluates literals only, never code).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Optional, Sequence, Union

from robot_instseg.engine.errors import ModelError


def parse_names_literal(text: str) -> list[str]:
    """'{0: "cup", 1: "bowl"}' or "['cup', 'bowl']" -> ['cup', 'bowl'] (gaps filled with '')."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise ModelError(f"class names metadata is not a Python literal: {text[:80]!r}") from exc
    if isinstance(value, dict):
        if not value:
            return []
        out = [""] * (max(int(k) for k in value) + 1)
        for key, name in value.items():
            out[int(key)] = str(name)
        return out
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    raise ModelError(f"class names metadata must be a dict or list, got {type(value).__name__}")


def read_labels_file(path: Path) -> list[str]:
    """One class name per line; blank lines and '#' comments are skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ModelError(f"labels file {path} cannot be read: {exc.strerror}") from exc
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def beside_model(model_path: Path) -> Optional[Path]:
    """A labels file next to the model: <stem>.names, <stem>.txt or labels.txt."""
    for candidate in (model_path.with_suffix(".names"), model_path.with_suffix(".txt"),
                      model_path.parent / "labels.txt"):
        if candidate.is_file():
            return candidate
    return None


def resolve_class_names(model_path: Path, metadata: dict[str, str], names: Optional[Sequence[str]] = None,
                        labels_path: Optional[str] = None) -> tuple[list[str], str]:
    """(names, where they came from), in priority: setting, labels_path, metadata, file beside model."""
    if names:
        return list(names), "setting"
    if labels_path:
        return read_labels_file(Path(labels_path)), str(labels_path)
    if metadata.get("names"):
        return parse_names_literal(metadata["names"]), "model metadata"
    found = beside_model(Path(model_path))
    if found is not None:
        return read_labels_file(found), str(found)
    return [], "none"


def parse_class_filter(text: str) -> tuple[Union[int, str], ...]:
    """"cup, 2" -> ("cup", 2): names stay strings, digits become class ids; empty = all classes."""
    return tuple(int(t) if t.isdigit() else t for t in (part.strip() for part in text.split(",")) if t)
