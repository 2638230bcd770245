"""Backend choice: ORT provider fallback, and the TensorRT engine cache (testable without a GPU)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
import pytest
from onnx_graphs import constant_output_model

from robot_instseg.engine import Segmenter, SegmenterConfig
from robot_instseg.engine.backends import BackendConfig, create_backend
from robot_instseg.engine.backends import tensorrt_cache as cache
from robot_instseg.engine.backends.onnxruntime_backend import resolve_providers
from robot_instseg.engine.errors import ModelError
from robot_instseg.engine.model_paths import file_sha256


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return constant_output_model(tmp_path / "m.onnx", {"output0": np.zeros((1, 38, 50), np.float32),
                                                       "output1": np.zeros((1, 32, 16, 16), np.float32)},
                                 input_shape=(1, 3, 64, 64))


def test_unavailable_providers_fall_back_with_one_warning(model: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        seg = Segmenter(model, SegmenterConfig(runtime=BackendConfig(providers=("tensorrt", "cuda", "cpu"))))
    warnings = [r for r in caplog.records if "not available" in r.getMessage()]
    assert len(warnings) == 1
    assert "tensorrt, cuda" in warnings[0].getMessage() and "CPUExecutionProvider" in warnings[0].getMessage()
    assert seg.backend.providers == ["CPUExecutionProvider"]
    assert "CPUExecutionProvider" in seg.backend.description


def test_cpu_threads_spin_in_a_run_only_by_default_and_never_when_asked(model: Path) -> None:
    key, stop = "session.intra_op.allow_spinning", "session.force_spinning_stop"
    quiet = create_backend(model, BackendConfig(spin_wait=False))
    assert quiet.session.get_session_options().get_session_config_entry(key) == "0"
    assert quiet.run({"images": np.zeros((1, 3, 64, 64), np.float32)})["output0"].shape == (1, 38, 50)
    default = create_backend(model, BackendConfig()).session.get_session_options()
    assert default.get_session_config_entry(stop) == "1"  # spinning ends when a run returns
    with pytest.raises(RuntimeError, match="does not have configuration"):  # onnxruntime's default: spinning
        default.get_session_config_entry(key)


def test_provider_options_follow_the_settings() -> None:
    chosen, skipped = resolve_providers(("tensorrt", "cuda", "cpu"), BackendConfig(
        device_id=1, fp16=True, engine_cache_dir="/tmp/x"), available=[
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    assert skipped == []
    (trt_name, trt_opts), (cuda_name, cuda_opts), cpu = chosen
    assert trt_name == "TensorrtExecutionProvider" and trt_opts["trt_fp16_enable"] is True
    assert trt_opts["trt_engine_cache_path"] == "/tmp/x" and trt_opts["device_id"] == 1
    assert cuda_opts == {"device_id": 1} and cpu == "CPUExecutionProvider"
    only_gpu, _ = resolve_providers(("cuda",), BackendConfig(), available=["CUDAExecutionProvider",
                                                                           "CPUExecutionProvider"])
    assert only_gpu[-1] == "CPUExecutionProvider"  # CPU is always the last resort


def test_unknown_backend_is_refused(model: Path) -> None:
    with pytest.raises(ModelError, match="unknown backend 'openvino'"):
        create_backend(model, BackendConfig(backend="openvino"))


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here")
def test_tensorrt_backend_without_tensorrt_says_what_to_install(model: Path) -> None:
    with pytest.raises(ModelError, match="needs the tensorrt Python package"):
        Segmenter(model, SegmenterConfig(runtime=BackendConfig(backend="tensorrt")))


def _key(model: Path, **changes) -> cache.EngineKey:
    base = dict(model_sha256=file_sha256(model), tensorrt_version="10.3.0", gpu_name="Orin (nvgpu)",
                fp16=True)
    base.update(changes)
    return cache.EngineKey(**base)


def test_engine_cache_stores_and_reuses_a_matching_engine(model: Path, tmp_path: Path) -> None:
    key = _key(model)
    assert cache.lookup(tmp_path / "c", model, key)[0] is None
    stored = cache.store(tmp_path / "c", model, key, b"serialized-engine")
    found, reason = cache.lookup(tmp_path / "c", model, key)
    assert found == stored and found.read_bytes() == b"serialized-engine", reason
    assert "orin-nvgpu-fp16" in found.name


@pytest.mark.parametrize("change", [{"tensorrt_version": "10.4.0"}, {"gpu_name": "RTX 4090"}, {"fp16": False}])
def test_engine_cache_key_changes_with_version_gpu_and_precision(model: Path, tmp_path: Path, change) -> None:
    cache.store(tmp_path, model, _key(model), b"engine")
    assert cache.lookup(tmp_path, model, _key(model, **change))[0] is None


def test_engine_cache_is_stale_when_the_model_changes(model: Path, tmp_path: Path) -> None:
    cache.store(tmp_path, model, _key(model), b"engine")
    model.write_bytes(model.read_bytes() + b"\0")  # a re-exported model
    assert cache.lookup(tmp_path, model, _key(model))[0] is None


def test_engine_cache_rejects_truncated_or_unrecorded_engines(model: Path, tmp_path: Path) -> None:
    key = _key(model)
    engine = cache.store(tmp_path, model, key, b"0123456789")
    engine.write_bytes(b"01234")  # cut short by a crash or a full disk
    found, reason = cache.lookup(tmp_path, model, key)
    assert found is None and "truncated" in reason
    engine.with_suffix(".json").unlink()
    found, reason = cache.lookup(tmp_path, model, key)
    assert found is None and "no readable record" in reason
