#!/usr/bin/env bash
# The checks to run on a GPU machine that has only the headless binary and a Python with torch 2.11.0
# (no Rust, no OpenCV): libtorch/CUDA report, `bench train` (our step vs PyTorch eager in the same run,
# with the phase profile) and a short training of each pipeline on synthetic data, with bf16 AMP and the
# device's default memory format (channels-last on CUDA). Under 8 minutes on one GPU.
#
#   scripts/gpu-check.sh [--device cuda|cpu] [--bin PATH] [--python PATH] [--out DIR] [--tiny]
#
# --device cpu --tiny runs the same steps in tiny sizes on the CPU (how it is tested without a GPU).
# Outputs (logs, bench JSON, runs) go to --out (default runs/gpu-check). Run from the repository root
# (the benchmark needs tests/python/).
set -euo pipefail

DEVICE=cuda
BIN=${SKIPBLOCK_BIN:-target/release/skipblock}
PY=""
OUT=runs/gpu-check
TINY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --python) PY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --tiny) TINY=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
[ -x "$BIN" ] || { echo "error: no skipblock binary at '$BIN' (--bin PATH)" >&2; exit 1; }
# The binary's libtorch: that Python's torch (the rpath of a binary built elsewhere points nowhere).
TORCH_LIB=$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mkdir -p "$OUT"
start=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - start )) s)"; }

if [ "$TINY" = 1 ]; then
  BENCH=(--iters 1 --batch 2 --size 64 --detect-batch 2 --model-only)
  CLS=(--classes 4 --train 8 --test 2 --size 64); CLS_TRAIN=(--epochs 1 --batch 8 --set model.input_size=64)
  VOC=(--train 8 --test 4 --size 128); DET_TRAIN=(--epochs 1 --batch 4)
else
  BENCH=(--iters 20)
  CLS=(--classes 10 --train 300 --test 30 --size 256); CLS_TRAIN=(--epochs 2 --batch 128 --set model.input_size=224 --set model.arch=skipblocknet-m)
  VOC=(--train 512 --test 64 --size 300); DET_TRAIN=(--epochs 2 --batch 32)
fi

step "skipblock info"
"$BIN" --device "$DEVICE" info | tee "$OUT/info.txt"

step "bench train --device $DEVICE --profile"
"$BIN" --device "$DEVICE" bench train --profile --python "$PY" "${BENCH[@]}" --json > "$OUT/bench-train.json"
"$PY" - "$OUT/bench-train.json" <<'PYEOF'
import json, sys
for r in json.load(open(sys.argv[1])):
    ref = "-" if r["reference"] is None else f'{r["reference"]:.2f}'
    ratio = "-" if r["ratio"] is None else f'{r["ratio"]:.2f}'
    print(f'{r["name"]:<90} {r["ours"]:>10.2f} {r["unit"]:<6} {ref:>10} {ratio:>6}')
PYEOF

step "classify train (synthetic Food-101 layout, bias loss, bf16 AMP)"
rm -rf "$OUT/cls-data" "$OUT/voc-data"   # this script's own data from an earlier run
"$BIN" data synth-cls --out "$OUT/cls-data" --layout food101 "${CLS[@]}" --seed 0 > /dev/null
"$BIN" --device "$DEVICE" -q --seed 0 classify train --config configs/synthetic-food101.toml --data "$OUT/cls-data" \
  --runs-dir "$OUT" --name classify --exist-ok --amp bf16 "${CLS_TRAIN[@]}"
tail -n 2 "$OUT/classify/metrics.csv"

step "detect train (synthetic VOC, SSDLite, bf16 AMP)"
"$BIN" data synth-voc --out "$OUT/voc-data" "${VOC[@]}" --seed 0 > /dev/null
DATA="$OUT/voc-data/VOCdevkit/VOC2007"
"$BIN" --device "$DEVICE" -q --seed 0 detect train --config configs/synthetic-voc.toml --data "$DATA" \
  --labels "$DATA/labels.txt" --runs-dir "$OUT" --name detect --exist-ok --amp bf16 "${DET_TRAIN[@]}"
tail -n 2 "$OUT/detect/metrics.csv"

step "detect predict --amp bf16"
"$BIN" --device "$DEVICE" -q detect predict --weights "$OUT/detect/best.safetensors" "$DATA/JPEGImages" \
  --amp bf16 --json --out "$OUT/predict" > "$OUT/predict.jsonl"
echo "$(wc -l < "$OUT/predict.jsonl") images; first: $(head -n 1 "$OUT/predict.jsonl" | cut -c1-200)"

step "done: outputs in $OUT"
