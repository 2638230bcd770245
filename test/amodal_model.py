"""A real model with the amodal head for tests that need one: the bundled network, read back from its ONNX,
with the head grown as ``train --init ... --amodal`` grows it (it starts as the visible coefficients, so its
whole masks are the visible masks decoded in the grown window: real instances, no training)."""

from __future__ import annotations

from pathlib import Path

BUNDLED = Path(__file__).resolve().parents[1] / "models" / "instseg_tabletop.onnx"


def grown_bundled_model(out: Path) -> Path:
    """Write the bundled model with a grown amodal head to ``out`` (an .onnx) and return it."""
    import dataclasses

    from robot_instseg.train.export import export_onnx
    from robot_instseg.train.from_onnx import compactseg_from_onnx
    from robot_instseg.train.model import CompactSeg

    plain, names = compactseg_from_onnx(BUNDLED)
    grown = CompactSeg(dataclasses.replace(plain.config, amodal=True))
    grown.load_state_dict(plain.state_dict(), strict=False)
    for head in grown.heads:
        head.start_amodal_from_visible()
    return export_onnx(grown.eval(), names, out)
