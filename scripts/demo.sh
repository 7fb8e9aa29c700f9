#!/usr/bin/env bash
# The main job (README's first command, after scripts/setup.sh): shows the runtime and the model family.
# The full demo (train an SSDLite detector on synthetic VOC, evaluate, predict) replaces this as the
# detection pipeline lands.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/skipblock
OUT=runs/demo
mkdir -p "$OUT"
echo "== skipblock info"
$BIN info
echo
echo "== the SkipblockNet family and the MobileNetV3 baseline at 224x224 (counted from the layers)"
for arch in skipblocknet-xs skipblocknet-s skipblocknet-m skipblocknet-l mobilenetv3-large; do
  $BIN model summary --arch "$arch" | tail -n 1
done
echo
echo "== per-layer table of SkipblockNet-M (a traced forward pass)"
$BIN model summary --arch skipblocknet-m --json > "$OUT/skipblocknet-m-summary.json"
echo "per-layer summary written to $OUT/skipblocknet-m-summary.json"
