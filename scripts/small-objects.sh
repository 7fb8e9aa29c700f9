#!/usr/bin/env bash
# Priors fitted to small objects vs SSD300's stock priors, same data, same training budget (issue 12's
# evidence): a synthetic VOC set of 10–30 px objects in 300x300 images, `data check --config` (coverage
# of both prior sets), then SSDLite-SkipblockNet-XS trained twice with configs/synthetic-small-objects.toml
# (backbone from a classifier on synthetic shapes, as the demo does), with and without --auto-priors,
# and VOC07 mAP of each on the test split. Outputs in runs/small-objects/ (summary.json). Run after
# `make build`; about 15 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/skipblock
OUT=runs/small-objects
DATA=$OUT/data/VOCdevkit/VOC2007
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
rm -rf "$OUT"
mkdir -p "$OUT"
$BIN data synth-cls --out "$OUT/cls-data" --layout food101 --classes 10 --train 60 --test 10 --size 96 --seed 0
$BIN -q --seed 0 classify train --config configs/synthetic-food101.toml --data "$OUT/cls-data" --runs-dir "$OUT" \
  --name classifier --exist-ok
$BIN data synth-voc --out "$OUT/data" --train 240 --test 60 --size 300 --min-object 10 --max-object 30 \
  --max-objects 12 --seed 3
$BIN data check --voc "$DATA" --config configs/synthetic-small-objects.toml --out "$OUT/data-check"
for priors in stock fitted; do
  flag=()
  [ "$priors" = fitted ] && flag=(--auto-priors)
  $BIN --seed 0 detect train --config configs/synthetic-small-objects.toml --data "$DATA" --labels "$DATA/labels.txt" \
    --backbone "$OUT/classifier/best.safetensors" --runs-dir "$OUT" --name "$priors" --exist-ok "${flag[@]}"
  $BIN detect eval --weights "$OUT/$priors/best.safetensors" --data "$DATA" --labels "$DATA/labels.txt" --split test \
    --metric voc07 --out "$OUT/eval-$priors" --json > "$OUT/eval-$priors.json"
done
"$PY" - "$OUT" <<'PYEOF'
import json, os, sys
out = sys.argv[1]
check = json.load(open(os.path.join(out, "data-check", "report.json")))["prior_coverage"]
summary = {
    "coverage_stock": check["coverage"]["all"],
    "coverage_fitted": check["fitted"]["after"]["all"],
    "fitted_min_sizes": check["fitted"]["priors"]["min_sizes"],
    "fitted_aspect_ratios": check["fitted"]["priors"]["aspect_ratios"][0],
}
for p in ("stock", "fitted"):
    e = json.load(open(os.path.join(out, f"eval-{p}.json")))
    summary[f"map_voc07_{p}"] = e["map"]
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
print(json.dumps(summary, indent=2))
PYEOF
