#!/usr/bin/env bash
# Train the bundled model's architecture with the issue-17 recipe (domain-randomised scenes, full
# augmentation, then 8 epochs with it closed), in one command: the "candidate" of models/MODEL_CARD.md,
# "Out of domain".
#   bash scripts/train_bundled_model.sh [RUN_DIR]     (default runs/bundled; about 3.5 h on a 2-core CPU)
# It generates the training and validation scenes, trains, exports RUN_DIR/instseg_tabletop.onnx and
# scores it on the in-domain and out-of-domain test sets. It never overwrites models/: compare, then
# copy the export there yourself. DEVICE=cuda trains on a GPU (numbers then differ slightly);
# EPOCHS (phase 1, default 12) and CLOSE_EPOCHS (phase 2, default 8) set the schedule.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source scripts/env.sh
RUN="${1:-runs/bundled}"
DEVICE="${DEVICE:-auto}"
EPOCHS="${EPOCHS:-12}"
CLOSE_EPOCHS="${CLOSE_EPOCHS:-8}"
mkdir -p "$RUN"

scenes() {  # OUT SEED COUNT [ARGS...]: generate a scene set once (a finished set is kept)
  local out="$1" seed="$2" count="$3"; shift 3
  [ -f "$RUN/$out/annotations.json" ] || robot-instseg scenes --out "$RUN/$out" --count "$count" --seed "$seed" --quiet "$@"
}
pair() {  # run two scene sets at once (rendering is single-threaded); fail if either fails
  local a b
  eval "scenes $1" & a=$!
  eval "scenes $2" & b=$!
  wait "$a"; wait "$b"
}
pair "train_default 101 1000" "train_random 103 1000 --style randomised"
pair "val 201 100" "test_default 90210 150"
pair "test_random 9200 150 --style randomised" "test_heldout 9100 150 --style heldout"

train() {  # the same data and settings for both phases
  robot-instseg train \
    --coco "$RUN/train_default/annotations.json" --images "$RUN/train_default" \
    --coco "$RUN/train_random/annotations.json" --images "$RUN/train_random" \
    --val-coco "$RUN/val/annotations.json" --val-images "$RUN/val" \
    --out "$RUN/model" --batch 16 --imgsz 288 384 --seed 0 --device "$DEVICE" --quiet "$@"
}
# Phase 1: the full augmentation (albumentations + copy-paste) over a cosine schedule of EPOCHS.
train --epochs "$EPOCHS" --augment full
# Phase 2: CLOSE_EPOCHS more with the strong augmentation closed (--augment basic: flips, affine,
# HSV, blur, noise), as Ultralytics closes mosaic for its last epochs. Resuming with a longer
# schedule restarts the cosine at 41 % of the peak (12 of 20 epochs) and anneals it to the floor.
train --epochs "$((EPOCHS + CLOSE_EPOCHS))" --augment basic --resume
robot-instseg export "$RUN/model/best.pt" --out "$RUN/instseg_tabletop.onnx"
for set in test_default test_random test_heldout; do
  echo "== $set"
  robot-instseg eval --model "$RUN/instseg_tabletop.onnx" --gt "$RUN/$set/annotations.json" \
    --images "$RUN/$set" --conf 0.01 --quiet
done
