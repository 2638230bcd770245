#!/usr/bin/env bash
# `make demo`: the main job on the embedded defaults, as far as it exists today.
# Today: the inference engine on the bundled model (or, until the trained model is bundled,
# an UNTRAINED network of the same architecture, for timing only), benchmarked against the
# raw onnxruntime session and run over generated frames into COCO results.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=demo_out
mkdir -p "$OUT/frames"

MODEL=$(python - <<'PY'
from robot_instseg.engine.errors import ModelError
from robot_instseg.model_paths import default_model_path
try:
    print(default_model_path())
except ModelError:
    print("")
PY
)
if [ -z "$MODEL" ]; then
  MODEL="$OUT/untrained_compactseg_640.onnx"
  echo "== no bundled model yet: exporting an UNTRAINED CompactSeg (timing only, its masks mean nothing)"
  python - "$MODEL" <<'PY'
import sys, torch
from robot_instseg.train.export import export_onnx
from robot_instseg.train.model import CompactSeg
torch.manual_seed(0)
export_onnx(CompactSeg(), ["cup", "bowl", "box", "bottle", "can", "tool"], sys.argv[1], 640)
PY
  CONF=0.0   # untrained scores are ~0.01: keep 100 instances so post-processing is exercised
else
  CONF=0.25
fi

python - "$OUT/frames" <<'PY'
import sys, cv2
from robot_instseg.sample_images import sample_frame
for i in range(8):
    cv2.imwrite(f"{sys.argv[1]}/frame_{i:03d}.png", cv2.cvtColor(sample_frame(seed=i), cv2.COLOR_RGB2BGR))
PY

echo "== robot-instseg bench (640x480 frames, pipeline vs raw session.run in one run)"
robot-instseg bench --model "$MODEL" --conf "$CONF" --runs 30 --warmup 3
echo "== robot-instseg run over $OUT/frames -> $OUT/preds.json"
robot-instseg run "$OUT/frames" --model "$MODEL" --conf "$CONF" --out "$OUT/preds.json"
echo "== demo done; outputs in $OUT/"
