#!/usr/bin/env bash
# The main job (README's first command; `make demo` runs scripts/setup.sh first), on the CPU:
#   1. a SkipblockNet-XS classifier trained with the bias loss on synthetic shapes (Food-101 layout),
#   2. a synthetic PASCAL VOC dataset (shapes on cluttered backgrounds, VOC2007 layout),
#   3. an SSDLite-SkipblockNet-XS detector trained on it, its backbone initialised from the classifier
#      (bias loss on the classification term, cosine-annealed SGD),
#   4. VOC07 and VOC12 mAP on the test split, with precision-recall curves,
#   5. `detect predict` on the held-out test images (annotated JPEGs),
#   6. runs/demo/summary.json with the numbers.
# Everything goes to runs/demo/. About 8 minutes on 2 cores once built.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/skipblock
OUT=runs/demo
DATA=$OUT/data/VOCdevkit/VOC2007
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$OUT"
mkdir -p "$OUT"
step "skipblock info"
$BIN info

step "1/6 classifier: SkipblockNet-XS on 10 synthetic shape classes (configs/synthetic-food101.toml)"
start=$(date +%s)
$BIN data synth-cls --out "$OUT/cls-data" --layout food101 --classes 10 --train 60 --test 10 --size 96 --seed 0
$BIN --seed 0 classify train --config configs/synthetic-food101.toml --data "$OUT/cls-data" --runs-dir "$OUT" \
  --name classifier --exist-ok
cls_seconds=$(( $(date +%s) - start ))

step "2/6 synthetic VOC data -> $DATA"
$BIN data synth-voc --out "$OUT/data" --train 960 --test 80 --size 160 --seed 0
$BIN data check --voc "$DATA" --config configs/synthetic-voc.toml --out "$OUT/data-check" | grep -E "classes read|^  all|coverage|auto-priors"

step "3/6 detector: SSDLite-SkipblockNet-XS (configs/synthetic-voc.toml), backbone from the classifier -> $OUT/train"
start=$(date +%s)
$BIN --seed 0 detect train --config configs/synthetic-voc.toml --data "$DATA" --labels "$DATA/labels.txt" \
  --backbone "$OUT/classifier/best.safetensors" --runs-dir "$OUT" --name train --exist-ok
train_seconds=$(( $(date +%s) - start ))

step "4/6 VOC07 and VOC12 mAP on the test split"
for metric in voc07 voc12; do
  $BIN detect eval --weights "$OUT/train/best.safetensors" --data "$DATA" --split test --metric $metric \
    --out "$OUT/eval-$metric" --save-detections "$OUT/eval-$metric/detections" --json > "$OUT/eval-$metric.json"
  echo "$metric mAP: $("$PY" -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["map"], 4))' "$OUT/eval-$metric.json")"
done

step "5/6 detect predict on the held-out test images -> $OUT/predictions"
mapfile -t test_images < <(sed "s#^#$DATA/JPEGImages/#; s#\$#.jpg#" "$DATA/ImageSets/Main/test.txt")
$BIN -q detect predict --weights "$OUT/train/best.safetensors" "${test_images[@]}" --out "$OUT/predictions" \
  --json > "$OUT/predictions.jsonl"

step "6/6 summary -> $OUT/summary.json"
"$PY" - "$OUT" "$train_seconds" "$cls_seconds" <<'PYEOF'
import json, os, sys
out, train_seconds, cls_seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cls = [json.loads(l) for l in open(os.path.join(out, "classifier", "metrics.jsonl"))]
ev = {m: json.load(open(os.path.join(out, f"eval-{m}.json"))) for m in ("voc07", "voc12")}
priors = json.load(open(os.path.join(out, "data-check", "report.json")))["prior_coverage"]
metrics = [json.loads(l) for l in open(os.path.join(out, "train", "metrics.jsonl"))]
preds = [json.loads(l) for l in open(os.path.join(out, "predictions.jsonl"))]
summary = {
    "classifier": {
        "arch": "skipblocknet-xs",
        "recipe": "configs/synthetic-food101.toml",
        "classes": 10,
        "epochs": len(cls),
        "val_top1": cls[-1]["val_top1"],
        "seconds": cls_seconds,
    },
    "detector": "ssdlite-skipblocknet-xs",
    "recipe": "configs/synthetic-voc.toml",
    "epochs": len(metrics),
    "train_seconds": train_seconds,
    "prior_coverage_stock": priors["coverage"]["all"]["share"],
    "prior_coverage_fitted": priors["fitted"]["after"]["all"]["share"],
    "map_voc07": ev["voc07"]["map"],
    "map_voc12": ev["voc12"]["map"],
    "ap_per_class_voc07": {c["class"]: c["ap"] for c in ev["voc07"]["classes"]},
    "test_images": len(preds),
    "detections_at_0.25": sum(len(p["detections"]) for p in preds),
    "files": {
        "checkpoint": os.path.join(out, "train", "best.safetensors"),
        "metrics": os.path.join(out, "train", "metrics.csv"),
        "training_curves": [os.path.join(out, "classifier", "curves.png"), os.path.join(out, "train", "curves.png")],
        "pr_curves": [os.path.join(out, "eval-voc07", "pr_curves.png"), os.path.join(out, "eval-voc12", "pr_curves.png")],
        "f1_curve": os.path.join(out, "eval-voc07", "f1_curve.png"),
        "confusion_matrix": os.path.join(out, "eval-voc07", "confusion_matrix.png"),
        "tensorboard": [os.path.join(out, "classifier", "tb"), os.path.join(out, "train", "tb")],
        "predictions": os.path.join(out, "predictions"),
        "data_report": [os.path.join(out, "data-check", "report.json"), os.path.join(out, "data-check", "object_sizes.png")],
    },
}
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
print(json.dumps({"classifier_val_top1": summary["classifier"]["val_top1"], **{k: summary[k] for k in ("epochs", "train_seconds", "map_voc07", "map_voc12", "test_images")}}, indent=2))
PYEOF
echo
echo "Done. Results in $OUT/: summary.json, classifier/ and train/ (checkpoints, metrics, curves.png, tb/ for"
echo "tensorboard --logdir $OUT), eval-voc07/ and eval-voc12/ (pr_curves.png, f1_curve.png, confusion_matrix.png,"
echo "detections), predictions/ (annotated test images)."
