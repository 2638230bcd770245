"""Give an exported ONNX model a dynamic batch axis, checked before it is written.

One node serving several cameras runs their waiting frames as one batch when the model takes
one (``Segmenter.batch_capacity``). Many exports fix the batch at 1 in the declared shapes only,
while the graph itself reads the batch from ``Shape`` (Ultralytics, our CompactSeg); renaming the
first axis of the input and outputs is then all it takes. A graph that bakes the batch into a
constant is refused: the check runs a batch of two through onnxruntime and compares every row
with the same frame run alone, bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np

from robot_instseg.engine.errors import ModelError

BATCH_NAME = "batch"


def with_dynamic_batch(source: Union[str, Path], out: Union[str, Path], check_rows: int = 2) -> Path:
    """Write ``source`` to ``out`` with the first axis of its input and outputs named ``batch``, after checking
    that a batch of ``check_rows`` equals its rows run one by one; ModelError (naming the file) otherwise."""
    import onnx

    source, out = Path(source), Path(out)
    try:
        model = onnx.load(str(source))
    except Exception as exc:  # not an ONNX file
        raise ModelError(f"{source}: not a readable ONNX model ({exc})") from exc
    inputs = [v for v in model.graph.input if v.name not in {i.name for i in model.graph.initializer}]
    if len(inputs) != 1 or len(inputs[0].type.tensor_type.shape.dim) != 4:
        raise ModelError(f"{source}: one NCHW image input expected, found {[v.name for v in inputs]}")
    for value in [*inputs, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if not dims:
            raise ModelError(f"{source}: output {value.name} has no batch axis")
        dims[0].ClearField("dim_value")
        dims[0].dim_param = BATCH_NAME
    del model.graph.value_info[:]  # inferred shapes still say 1; onnxruntime infers them again
    for prop in model.metadata_props:
        if prop.key == "batch":
            prop.value = "-1"
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    try:
        rows_equal_alone(out, check_rows)
    except ModelError:
        out.unlink(missing_ok=True)
        raise
    return out


def rows_equal_alone(path: Union[str, Path], rows: int = 2, seed: int = 0) -> None:
    """Run ``rows`` random frames as one batch and one by one; ModelError unless every output row is identical."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 640 for d in spec.shape[1:]]
    frames = np.random.default_rng(seed).random((rows, *shape), dtype=np.float32)
    try:
        together = session.run(None, {spec.name: frames})
        alone = [session.run(None, {spec.name: frames[i:i + 1]}) for i in range(rows)]
    except Exception as exc:  # a Reshape with the batch baked in fails here
        raise ModelError(f"{path}: the graph does not run with a batch of {rows} ({exc})") from exc
    for name, batched, *singles in zip([o.name for o in session.get_outputs()], together, *alone):
        if batched.shape[0] != rows or any(not np.array_equal(batched[i], single[0]) for i, single in
                                           enumerate(singles)):
            raise ModelError(f"{path}: output {name} of a batch of {rows} differs from its frames run alone; "
                             "this graph cannot batch")
