#!/usr/bin/env bash
# Reproduce the shipped tiny model: the whole chain of stages on CPU, resumable.
#   bash scripts/train_tiny.sh [DIR]      (runs go to DIR/runs, default: the repository)
# Each stage reads the previous stage's runs/tiny-<stage>/model; re-running the
# script resumes an interrupted stage from its last checkpoint and skips finished ones.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
base="$(realpath -m "${1:-$repo}")"
runs="$base/runs"
mkdir -p "$runs"
cd "$base"  # the configs name their inputs relative to here (runs/tiny-<stage>/model)
for stage in vae-frames vae base-crops base sketchdit-crops sketchdit sketchdit-focus sketchdit-joint-crops sketchdit-joint-crops-2 sketchdit-joint memory-model memory memory-far reward vae-decoder sketchdit-objects-crops sketchdit-objects sketchdit-objects-2-crops sketchdit-objects-2 memory-objects reward-2; do
  out="$runs/tiny-$stage"
  if [ -f "$out/model/longanimation.json" ]; then
    echo "stage $stage: done ($out/model)"
    continue
  fi
  resume=()
  [ -d "$out/checkpoints" ] && resume=(--resume)
  echo "stage $stage -> $out"
  longanimation train --config "$repo/configs/train/tiny-$stage.yaml" --output "$out" "${resume[@]}" --quiet
done
echo "tiny model: $runs/tiny-reward-2/model"
