#!/usr/bin/env bash
# The main job (`make demo` builds .venv first): render a synthetic drive into an MCAP
# rosbag, replay it over DDS into the real detector_node (bundled model, ONNX Runtime on
# CPU), record every output into a second bag and write a report (video, contact sheet,
# metrics, latency). Extra arguments go to the demo command, e.g.
#   scripts/demo.sh --frames 200 --set score_type:=sml --set threshold:=2.0
# See docs/demo.md. Output: $OUT (default output/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=${OUT:-output/demo}
model_args=()
if [ ! -f models/demo/demo.onnx ]; then
  model="$OUT/random_model/random.onnx"
  echo "[demo] no bundled model at models/demo/demo.onnx: using a RANDOMLY INITIALISED"
  echo "[demo] network instead. Its labels, scores and metrics are meaningless."
  if [ ! -f "$model" ]; then
    "$BIN/anomaly-seg" export --random-init --backbone mobilenetv2 --width-mult 0.5 \
      --input-size 256 512 --out "$model"
  fi
  model_args=(--model "$model")
elif [ -f models/demo/demo.params.yaml ]; then
  # The bundled model's node settings: score, refinement and threshold chosen on held-out
  # frames of another world seed (python -m demo.model.settings), never on the drive.
  model_args=(--params models/demo/demo.params.yaml)
fi
exec "$BIN/python" -m demo --out "$OUT" \
  ${model_args[@]+"${model_args[@]}"} "$@"
