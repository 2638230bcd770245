"""The compact network exports to an ONNX that our Segmenter reads as a YOLO-seg model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")

from robot_instseg.engine import Segmenter, SegmenterConfig  # noqa: E402
from robot_instseg.synthetic.sample_images import sample_frame  # noqa: E402
from robot_instseg.train.export import export_checkpoint, load_checkpoint, names_literal  # noqa: E402
from robot_instseg.train.model import CompactSeg, ModelConfig, count_parameters  # noqa: E402


def test_checkpoint_exports_verified_onnx_with_ultralytics_metadata(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = ModelConfig(num_classes=3, width=16, imgsz=128)
    model = CompactSeg(config)
    assert count_parameters(CompactSeg()) <= 3_000_000  # the default size stays compact
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "config": config.to_dict(), "names": ["cup", "bowl", "box"]}, ckpt)
    assert load_checkpoint(ckpt)["names"] == ["cup", "bowl", "box"]  # weights_only load
    out = export_checkpoint(ckpt, tmp_path / "m.onnx")
    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["names"] == names_literal(["cup", "bowl", "box"]) == "{0: 'cup', 1: 'bowl', 2: 'box'}"
    assert meta["imgsz"] == "[128, 128]" and meta["stride"] == "32" and meta["task"] == "segment"
    assert proto.opset_import[0].version >= 17
    seg = Segmenter(out, SegmenterConfig(score_threshold=0.0, max_detections=20))
    assert seg.decoder.name == "yolo_seg" and seg.class_names == ["cup", "bowl", "box"]
    det = seg(sample_frame(96, 160))
    assert len(det) == 20 and det.image_shape == (96, 160)
    assert np.all(det.boxes[:, [0, 2]] <= 160) and np.all(det.boxes[:, [1, 3]] <= 96)


def test_checkpoint_with_code_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, path)
    with pytest.raises(Exception, match="(?i)weights.only|unsupported|global"):
        load_checkpoint(path)
