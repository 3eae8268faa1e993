#!/usr/bin/env bash
# Copy the tiny model trained by scripts/train_tiny.sh into the package, as the default model.
#   bash scripts/ship_tiny.sh [DIR] [STEPS]   (DIR as given to train_tiny.sh, default: the repository)
# STEPS (default 1) becomes the model's default denoising steps per segment: at tiny scale one
# step (the conditional mean) scores best (see assets/tiny-model/training/README.md).
# The weights come from the last link, DIR/runs/tiny-reward-2/model; every link's config, log and curves go to
# assets/tiny-model/training/ next to them (training/README.md is kept).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
runs="$(realpath -m "${1:-$repo}")/runs"
steps="${2:-1}"
links=(vae-frames vae base-crops base sketchdit-crops sketchdit sketchdit-focus sketchdit-joint-crops sketchdit-joint-crops-2 sketchdit-joint memory-model memory memory-far reward vae-decoder sketchdit-objects-crops sketchdit-objects sketchdit-objects-2-crops sketchdit-objects-2 memory-objects reward-2)
for link in "${links[@]}"; do
  [ -f "$runs/tiny-$link/model/longanimation.json" ] || { echo "link $link has not finished: $runs/tiny-$link" >&2; exit 2; }
done
asset="$repo/src/longanimation/assets/tiny-model"
staging="$(mktemp -d "$repo/src/longanimation/assets/.tiny-model.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
cp -r "$runs/tiny-${links[-1]}/model/." "$staging/"
python - "$staging/longanimation.json" "$steps" <<'PY'
import json, sys
path, steps = sys.argv[1], int(sys.argv[2])
index = json.load(open(path))
segment = index["segment"]
segment["num_inference_steps"], segment["fusion_steps"] = steps, min(segment["fusion_steps"], steps)
open(path, "w").write(json.dumps(index, indent=2) + "\n")
PY
mkdir -p "$staging/training"
[ -f "$asset/training/README.md" ] && cp "$asset/training/README.md" "$staging/training/"
for link in "${links[@]}"; do
  cp "$repo/configs/train/tiny-$link.yaml" "$staging/training/$link.yaml"
  cp "$runs/tiny-$link/log.csv" "$staging/training/$link-log.csv"
  cp "$runs/tiny-$link/loss.png" "$staging/training/$link-loss.png"
done
rm -rf "$asset.old"
[ -d "$asset" ] && mv "$asset" "$asset.old"
mv "$staging" "$asset"
rm -rf "$asset.old"
echo "shipped: $asset"
