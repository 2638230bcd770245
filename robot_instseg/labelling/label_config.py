"""The Label Studio labelling config for a dataset's classes: one image, one label per class."""

from __future__ import annotations

from typing import Sequence
from xml.sax.saxutils import quoteattr

from robot_instseg.labelling.brush import FROM_NAME, TO_NAME
from robot_instseg.labelling.errors import LabellingError

KINDS = {"brush": "BrushLabels", "polygon": "PolygonLabels"}


def class_colour(index: int) -> str:
    """A distinct, stable colour per class index (golden-angle hues)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((index * 0.618033988749895) % 1.0, 0.85, 0.95)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


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
