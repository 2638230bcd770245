"""Our ONNX exports read back into CompactSeg: the bundled model becomes fine-tunable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from robot_instseg.train.export import export_onnx  # noqa: E402
from robot_instseg.train.from_onnx import NotOurExport, compactseg_from_onnx, reopen_batch_norms  # noqa: E402
from robot_instseg.train.model import CompactSeg, ModelConfig  # noqa: E402

BUNDLED = Path(__file__).resolve().parents[2] / "models" / "instseg_tabletop.onnx"


def _session_outputs(path: Path, x: torch.Tensor) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": x.numpy()})


def _export_outputs(model: CompactSeg, x: torch.Tensor, training: bool = False) -> list[np.ndarray]:
    """The exported outputs, in eval mode or (``training``) with batch statistics; the running
    statistics and the model's mode are left as they were."""
    momentum = [(m, m.momentum) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m, _ in momentum:
        m.momentum = 0.0
    model.train(training).export_mode = True
    try:
        with torch.no_grad():
            return [t.numpy() for t in model(x)]
    finally:
        model.export_mode = False
        model.eval()
        for m, value in momentum:
            m.momentum = value


def _trained_like(config: ModelConfig) -> CompactSeg:
    """A CompactSeg whose batch norms are far from their defaults, as after training."""
    torch.manual_seed(1)
    model = CompactSeg(config)
    with torch.no_grad():
        for norm in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.3, 0.3)
    return model


def test_an_export_reads_back_to_the_same_network_and_outputs(tmp_path: Path) -> None:
    config = ModelConfig(num_classes=3, num_masks=8, width=8, imgsz=(64, 96))
    original = _trained_like(config)
    path = export_onnx(original, ["cup", "bowl", "box"], tmp_path / "m.onnx")
    model, names = compactseg_from_onnx(path)
    assert names == ["cup", "bowl", "box"] and model.config == config
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    for ours, theirs in zip(_export_outputs(model, x), _export_outputs(original, x)):
        np.testing.assert_allclose(ours, theirs, atol=2e-4, rtol=1e-4)


def test_reopened_batch_norms_keep_eval_output_and_make_training_mode_close() -> None:
    model, _ = compactseg_from_onnx(BUNDLED)
    h, w = model.config.input_size
    x = torch.rand(8, 3, h, w, generator=torch.Generator().manual_seed(2)) * 0.6 + 0.2
    before = _export_outputs(model, x)
    for ours, onnxruntime_out in zip(before, _session_outputs(BUNDLED, x[:1])):
        np.testing.assert_allclose(ours[:1], onnxruntime_out, atol=1e-3)
    identity_norms = _export_outputs(model, x, training=True)  # unopened: training mode renormalises everything
    assert reopen_batch_norms(model, [x[:4], x[4:]]) == 8
    after = _export_outputs(model, x)
    for a, b in zip(after, before):
        np.testing.assert_allclose(a, b, atol=1e-3)
    training_mode = _export_outputs(model, x, training=True)
    gap_reopened = np.abs(training_mode[0] - before[0]).mean()
    gap_identity = np.abs(identity_norms[0] - before[0]).mean()
    assert gap_reopened < 0.05 * gap_identity, (gap_reopened, gap_identity)


def test_an_onnx_that_is_not_our_export_is_named(tmp_path: Path) -> None:
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["images"], ["output0"])], "g",
        [onnx.helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [onnx.helper.make_tensor_value_info("output0", onnx.TensorProto.FLOAT, [1, 3, 8, 8])])
    path = tmp_path / "relu.onnx"
    onnx.save(onnx.helper.make_model(graph), str(path))
    with pytest.raises(NotOurExport, match="relu.onnx.*metadata"):
        compactseg_from_onnx(path)
