"""The Label Studio labelling config for a dataset's classes: one image, one label per class."""

from __future__ import annotations

from typing import Sequence
from xml.sax.saxutils import quoteattr

from robot_instseg.io.overlay import colour_hex
from robot_instseg.labelling.brush import FROM_NAME, TO_NAME
from robot_instseg.labelling.errors import LabellingError

KINDS = {"brush": "BrushLabels", "polygon": "PolygonLabels"}


def class_colour(index: int) -> str:
    """The class's colour in Label Studio: the one our overlays draw it in."""
    return colour_hex(index)


def label_config(classes: Sequence[str], kind: str = "brush") -> str:
    """The XML config: an Image tag bound to ``$image`` and a BrushLabels (or PolygonLabels)
    control with one Label per class."""
    if kind not in KINDS:
        raise LabellingError(f"unknown label kind {kind!r} (one of {', '.join(KINDS)})", "format")
    if not classes:
        raise LabellingError("the dataset names no classes", "dataset")
    labels = "".join(f'<Label value={quoteattr(name)} background="{class_colour(i)}"/>'
                     for i, name in enumerate(classes))
    tag = KINDS[kind]
    return (f'<View><Image name="{TO_NAME}" value="$image" zoom="true"/>'
            f'<{tag} name="{FROM_NAME}" toName="{TO_NAME}">{labels}</{tag}></View>')
