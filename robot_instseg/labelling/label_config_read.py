"""The classes a Label Studio labelling config offers, read back from its XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from robot_instseg.labelling.errors import LabellingError

MASK_CONTROLS = ("BrushLabels", "PolygonLabels")


def config_classes(config: str) -> list[str]:
    """Label values of the first BrushLabels or PolygonLabels control, in config order."""
    try:
        root = ET.fromstring(config)
    except ET.ParseError as exc:
        raise LabellingError(f"the project's labelling config is not XML: {exc}", "format") from exc
    for control in root.iter():
        if control.tag in MASK_CONTROLS:
            return [str(label.get("value")) for label in control.iter("Label")]
    raise LabellingError("the project's labelling config has no BrushLabels or PolygonLabels", "format")
