#!/usr/bin/env bash
# The main job on the embedded default: generate a few synthetic road frames with
# anomalies on the road, run the bundled model on them, write labels/score/mask/overlay.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=${OUT:-output/demo}
FRAMES=${FRAMES:-8}
MODEL=models/demo/demo.onnx
mkdir -p "$OUT"
if [ ! -f "$MODEL" ]; then
  MODEL="$OUT/random_model/random.onnx"
  echo "[demo] no bundled model at models/demo/demo.onnx: exporting a RANDOMLY INITIALISED"
  echo "[demo] network instead. Its labels, scores and masks are meaningless."
  "$BIN/anomaly-seg" export --random-init --backbone mobilenetv2 --width-mult 0.5 \
    --input-size 256 512 --out "$MODEL"
fi
echo "[demo] generating $FRAMES synthetic frames with road anomalies"
"$BIN/python" -m training.synthetic.generate --out "$OUT/world" --train 0 --val 0 \
  --anomaly "$FRAMES" --ood-bank 0 --seed 7 --no-progress
"$BIN/anomaly-seg" detect "$OUT/world/anomaly/original" --model "$MODEL" --out "$OUT/detect"
echo "[demo] done: inputs in $OUT/world/anomaly/original, results in $OUT/detect"
echo "[demo]       (*_labels_color.png, *_score.png, *_mask.png, *_overlay.png per frame)"
