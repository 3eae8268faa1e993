"""Quality of a model on toon shots from seeds never used in training (issue: the shipped tiny model).

    python benchmarks/tiny_quality.py --model DIR [--seeds 100-109] [--frames 300] [--size 128] [--out DIR]
    python benchmarks/tiny_quality.py --model DIR --shot examples/toon-shot [--out DIR]

For each seed: `longanimation toon generate`, `longanimation colorize` from the
keyframe at frame 0, `longanimation evaluate` against the ground truth with the
region maps; the same frames are scored again flattened to one color per area
of the line art, exactly as `longanimation colorize --flat` writes them
(:func:`longanimation.pipeline.flat_colors.flatten_frame`). Frames whose line
art repeats the keyframe's (a held drawing at the start) are left out of the
evaluation: the pipeline returns the keyframe itself there, which would
inflate short-term PSNR. Writes one JSON report per
seed and summary.json / summary.md (mean and spread of short-term = first 14
evaluated frames, and long-term = all of them), with the ceiling the model's
VAE sets: the PSNR of the ground truth passed through its encoder and decoder
(segment-sized chunks, at the model's frame size), and the trivial baseline of
copying the keyframe to every evaluated frame (same frames and sizes).

The summary is rewritten after every shot, and a rerun with the same model
weights (not only the same folder), frames and size skips the seeds it
already holds, so an interrupted run (or a run that adds seeds) goes on
where it stopped.

``--shot DIR`` scores one existing toon shot folder instead (``color/``,
``lineart/``, ``regions/``, ``manifest.json``, as ``longanimation toon
generate`` writes it; e.g. the bundled example) by the same protocol, and
writes ``shot-NAME.json`` with its row next to its two reports.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from longanimation.atomic import atomic_file
from longanimation.data.video_io import read_shot
from longanimation.data.lineart import image_to_lineart
from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.pipeline.flat_colors import flatten_frame


def run(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "longanimation", *map(str, args)], check=True)


def link_from(source: Path, target: Path, start: int) -> None:
    target.mkdir(parents=True)
    for path in sorted(source.iterdir())[start:]:
        (target / path.name).symlink_to(path.resolve())


@torch.no_grad()
def vae_round_trip_psnr(model: LongAnimationModel, frames: np.ndarray) -> float:
    """PSNR (dB, [0, 1] range) of ``frames`` (T, H, W, 3) uint8 after the VAE, in ``model.segment.frames`` chunks."""
    backbone, chunk = model.backbone, model.segment.frames
    errors = []
    for start in range(0, len(frames) - chunk + 1, chunk):
        pixels = torch.from_numpy(frames[start : start + chunk]).float().permute(3, 0, 1, 2)[None] / 127.5 - 1
        decoded = backbone.decode_latents(backbone.encode_video(pixels)).clamp(-1, 1)
        errors.append(((decoded - pixels) / 2).square().mean().item())
    return float(10 * np.log10(1 / np.mean(errors)))


def seeds_of(text: str) -> list[int]:
    if "-" in text:
        first, last = map(int, text.split("-"))
        return list(range(first, last + 1))
    return [int(seed) for seed in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--seeds", default="100-109")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--out", default="benchmarks/results/tiny-quality")
    parser.add_argument("--shot", type=Path, help="score this toon shot folder instead of generated seeds")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = LongAnimationModel.from_pretrained(args.model).eval()
    if args.shot is not None:
        with tempfile.TemporaryDirectory() as scratch:
            row = score_shot(args, model, args.shot, args.shot.name, 0, Path(scratch), out)
        with atomic_file(out / f"shot-{args.shot.name}.json") as tmp:
            tmp.write_text(json.dumps({"model": args.model, "weights": model.weights_digest(), **row}, indent=1) + "\n")
        print(row, flush=True)
        return
    seeds = seeds_of(args.seeds)
    setting = {"model": args.model, "weights": model.weights_digest(), "frames": args.frames, "size": args.size,
               "outputs": list(OUTPUTS)}
    previous = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    done = {row["seed"]: row for row in previous.get("shots", []) if all(previous.get(k) == v for k, v in setting.items())}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for seed in (seed for seed in seeds if seed not in done):
            done[seed] = score_seed(args, model, seed, scratch, out)
            print(done[seed], flush=True)
            write_summary(out, setting, args.seeds, [done[seed] for seed in seeds if seed in done])


OUTPUTS = {"": "colorize", "flat_": "colorize --flat"}  # key prefix of a row's metrics -> what produced the frames


def flatten_folder(source: Path, lineart: Path, target: Path) -> None:
    """``colorize --flat``'s output from the plain one: each frame flattened over its line art's areas."""
    target.mkdir(parents=True)
    for frame_path, sketch_path in zip(sorted(source.iterdir()), sorted(lineart.iterdir()), strict=True):
        frame = np.asarray(Image.open(frame_path).convert("RGB"))
        Image.fromarray(flatten_frame(frame, image_to_lineart(np.asarray(Image.open(sketch_path))))).save(
            target / frame_path.name
        )


def score_seed(args: argparse.Namespace, model: LongAnimationModel, seed: int, scratch: Path, out: Path) -> dict:
    """Generate, colorize and evaluate one toon shot; its row of the summary."""
    shot = scratch / f"shot-{seed}"
    run("toon", "generate", "--frames", args.frames, "--size", args.size, "--seed", seed, shot)
    return {"seed": seed, **score_shot(args, model, shot, f"seed-{seed}", seed, scratch, out)}


def score_shot(
    args: argparse.Namespace, model: LongAnimationModel, shot: Path, name: str, seed: int, scratch: Path, out: Path
) -> dict:
    """Colorize toon shot folder ``shot`` from its frame 0 (``--seed seed``), evaluate; writes ``out/NAME[-flat].json``."""
    pred = scratch / f"pred-{name}"
    manifest = json.loads((shot / "manifest.json").read_text())
    run("colorize", shot / "lineart", pred, "-k", shot / "color" / "00000.png", "--prompt",
        manifest["caption"], "--model", args.model, "--seed", seed, "--quiet")
    lineart = [np.asarray(Image.open(path)) for path in sorted((shot / "lineart").iterdir())]
    start = next(i for i, sketch in enumerate(lineart) if not np.array_equal(sketch, lineart[0]))
    evaluated = scratch / f"eval-{name}"
    for part, folder in (("pred", pred / "frames"), ("lineart", shot / "lineart"), ("gt", shot / "color"),
                         ("ids", shot / "regions")):
        link_from(folder, evaluated / part, start)
    (evaluated / "manifest.json").symlink_to((shot / "manifest.json").resolve())
    flatten_folder(evaluated / "pred", evaluated / "lineart", evaluated / "pred-flat")
    metrics = {}
    for prefix, folder, report_path in (("", "pred", out / f"{name}.json"),
                                        ("flat_", "pred-flat", out / f"{name}-flat.json")):
        run("evaluate", "--pred", evaluated / folder, "--gt", evaluated / "gt", "--ids", evaluated / "ids",
            "--segment-length", 13, "--out", report_path, "--quiet")
        table = json.loads(report_path.read_text())["table"]
        metrics |= {f"{prefix}{term}_{metric}": table[term][metric] for term in ("short_term", "long_term")
                    for metric in ("psnr", "ssim")}
    color = read_shot(shot / "color").frames
    ceiling = vae_round_trip_psnr(model, color)
    copy_error = np.square((color[start:].astype(np.float64) - color[0]) / 255).mean()
    return {"skipped_keyframe_frames": start, "vae_round_trip_psnr": round(ceiling, 3),
            "keyframe_copy_psnr": round(float(10 * np.log10(1 / copy_error)), 3), **metrics}


def write_summary(out: Path, setting: dict, seeds: str, rows: list[dict]) -> None:
    """summary.json and summary.md: mean and spread over ``rows``."""
    summary = {**setting, "shots": rows}
    metrics = [f"{prefix}{term}_{metric}" for prefix in OUTPUTS for term in ("short_term", "long_term")
               for metric in ("psnr", "ssim")]
    for key in (*metrics, "vae_round_trip_psnr", "keyframe_copy_psnr"):
        values = np.array([row[key] for row in rows])
        summary[key] = {"mean": round(float(values.mean()), 3), "std": round(float(values.std()), 3)}
    with atomic_file(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    lines = [
        f"# Toon shots never seen in training: {len(rows)} seeds, {setting['frames']} frames at "
        f"{setting['size']}x{setting['size']}",
        "",
        f"Command: `python benchmarks/tiny_quality.py --model {setting['model']} --seeds {seeds} "
        f"--frames {setting['frames']} --size {setting['size']}`",
        "",
        "| output | frames | PSNR (dB) | SSIM |",
        "| --- | --- | --- | --- |",
    ]
    for prefix, command in OUTPUTS.items():
        for term, label in (("short_term", "short-term (first 14)"), ("long_term", "long-term (whole shot)")):
            psnr, ssim = summary[f"{prefix}{term}_psnr"], summary[f"{prefix}{term}_ssim"]
            lines.append(f"| `{command}` | {label} | {psnr['mean']:.2f} ± {psnr['std']:.2f} "
                         f"| {ssim['mean']:.3f} ± {ssim['std']:.3f} |")
    ceiling, copy = summary["vae_round_trip_psnr"], summary["keyframe_copy_psnr"]
    lines += ["", f"Ceiling set by the model's VAE (ground truth encoded and decoded, native size): "
              f"{ceiling['mean']:.2f} ± {ceiling['std']:.2f} dB. Trivial baseline (the keyframe copied to every "
              f"evaluated frame, native size, whole shot): {copy['mean']:.2f} ± {copy['std']:.2f} dB."]
    with atomic_file(out / "summary.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
