#!/usr/bin/env bash
# Data-parallel training through torchrun on a GPU machine: NCCL (the default on CUDA), world size = the
# GPUs asked for (default 1), against a plain run of the same recipe and seed. Needs the headless binary
# built where the NCCL and CUDA headers were found (`skipblock info` lists `dist backends  gloo, nccl`)
# and a Python with torch 2.11.0 (its torchrun and its libtorch). Prints what the README's note needs:
# the backend line, each run's metrics and the weight difference of the world-size-1 run and the plain
# one (the same maths: 0 up to kernel non-determinism). About 2 minutes on one GPU.
#
#   scripts/ddp-check.sh [--device cuda|cpu] [--nproc N] [--backend nccl|gloo] [--bin PATH] [--python PATH]
#                        [--out DIR] [--tiny]
#
# --device cpu --backend gloo --nproc 2 --tiny runs the same steps on the CPU (how it is tested here).
set -euo pipefail

DEVICE=cuda
NPROC=1
BACKEND=""
BIN=${SKIPBLOCK_BIN:-target/release/skipblock}
PY=""
OUT=runs/ddp-check
TINY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --nproc) NPROC=$2; shift 2 ;;
    --backend) BACKEND=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --python) PY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --tiny) TINY=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "error: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
[ -x "$BIN" ] || { echo "error: no skipblock binary at '$BIN' (--bin PATH)" >&2; exit 1; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
TORCH_LIB=$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export SKIPBLOCK_DIST_TIMEOUT=${SKIPBLOCK_DIST_TIMEOUT:-120}
TORCHRUN=("$PY" -m torch.distributed.run)
DIST=()
[ -n "$BACKEND" ] && DIST=(--dist-backend "$BACKEND")
mkdir -p "$OUT"
start=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - start )) s)"; }

THREADS=()
if [ "$TINY" = 1 ]; then
  THREADS=(--threads 1)
  CLS=(--classes 4 --train 16 --test 8 --size 64); CLS_TRAIN=(--epochs 2 --batch 4 --set model.input_size=64)
  VOC=(--train 8 --test 4 --size 128); DET_TRAIN=(--epochs 1 --batch 2)
else
  CLS=(--classes 10 --train 100 --test 20 --size 160); CLS_TRAIN=(--epochs 3 --batch 64 --set model.input_size=128)
  VOC=(--train 128 --test 32 --size 300); DET_TRAIN=(--epochs 2 --batch 16)
fi
# Cross-entropy, no dropout: the world-size-1 run must match the plain one.
SAME=(--loss ce --set model.dropout=0.0)

step "skipblock info"
"$BIN" --device "$DEVICE" info | tee "$OUT/info.txt"
"$BIN" info | grep -q "dist backends .*${BACKEND:-gloo}" || { echo "error: this binary lacks the ${BACKEND:-gloo} backend" >&2; exit 1; }

step "synthetic data"
"$BIN" data synth-cls --out "$OUT/cls" --layout food101 "${CLS[@]}" --seed 1
"$BIN" data synth-voc --out "$OUT/voc" "${VOC[@]}" --seed 1
VOCROOT="$OUT/voc/VOCdevkit/VOC2007"

step "classify train: plain run"
"$BIN" "${THREADS[@]}" --device "$DEVICE" --seed 3 classify train --config configs/synthetic-food101.toml --data "$OUT/cls" \
  "${CLS_TRAIN[@]}" "${SAME[@]}" --runs-dir "$OUT/runs" --name plain --exist-ok 2>&1 | tee "$OUT/plain.log"

step "classify train: torchrun --nproc-per-node $NPROC"
"${TORCHRUN[@]}" --nproc-per-node "$NPROC" --master-port "${MASTER_PORT:-29533}" --no-python "$BIN" \
  "${THREADS[@]}" --device "$DEVICE" --seed 3 classify train --config configs/synthetic-food101.toml --data "$OUT/cls" \
  "${CLS_TRAIN[@]}" "${SAME[@]}" "${DIST[@]}" --runs-dir "$OUT/runs" --name ddp --exist-ok 2>&1 | tee "$OUT/ddp.log"

step "detect train: torchrun --nproc-per-node $NPROC"
"${TORCHRUN[@]}" --nproc-per-node "$NPROC" --master-port "${MASTER_PORT:-29533}" --no-python "$BIN" \
  "${THREADS[@]}" --device "$DEVICE" --seed 3 detect train --config configs/synthetic-voc.toml --data "$VOCROOT" \
  --labels "$VOCROOT/labels.txt" "${DET_TRAIN[@]}" "${DIST[@]}" --runs-dir "$OUT/runs" --name ddp-det --exist-ok \
  2>&1 | tee "$OUT/ddp-det.log"

step "summary"
grep -h "data-parallel" "$OUT/ddp.log" "$OUT/ddp-det.log" || { echo "error: no data-parallel run" >&2; exit 1; }
"$PY" - "$OUT/runs" "$NPROC" <<'PYEOF'
import json, sys, os
runs, nproc = sys.argv[1], int(sys.argv[2])
def records(name):
    return [json.loads(l) for l in open(os.path.join(runs, name, "metrics.jsonl"))]
for name in ["plain", "ddp", "ddp-det"]:
    for r in records(name):
        keep = {k: r.get(k) for k in ["epoch", "train_loss", "val_top1", "val_map", "images_per_sec", "epoch_seconds"]}
        print(name, json.dumps(keep))
import struct, torch
def load(path):  # safetensors without the safetensors package: 8-byte header length, JSON header, data
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    kinds = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "F16": torch.float16, "BF16": torch.bfloat16}
    out = {}
    for k, v in header.items():
        if k == "__metadata__" or v["dtype"] not in kinds:
            continue
        lo, hi = v["data_offsets"]
        t = torch.frombuffer(bytearray(raw[8 + n + lo:8 + n + hi]), dtype=kinds[v["dtype"]]) if hi > lo else torch.empty(0)
        out[k] = t.reshape(v["shape"])
    return out
a = load(os.path.join(runs, "plain", "last.safetensors"))
b = load(os.path.join(runs, "ddp", "last.safetensors"))
diff = max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point() and a[k].numel())
note = "world size 1: the same maths" if nproc == 1 else f"world size {nproc}: batch per rank, another trajectory"
print(f"max |w_plain - w_ddp| = {diff:.3e} ({note})")
PYEOF
echo "ddp-check done in $(( $(date +%s) - start )) s; outputs in $OUT"
