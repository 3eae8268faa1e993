"""Quality of a model on toon shots from seeds never used in training (issue: the shipped tiny model).

    python benchmarks/tiny_quality.py --model DIR [--seeds 100-109] [--frames 300] [--size 128] [--out DIR]
    python benchmarks/tiny_quality.py --model DIR --shot examples/toon-shot [--out DIR]
    python benchmarks/tiny_quality.py --model DIR --keyframes 0,150 --out DIR
    python benchmarks/tiny_quality.py --model DIR --colorize-args "--correspondence none" --out DIR

For each seed: `longanimation toon generate`, `longanimation colorize` from the
keyframe at frame 0 (or the ground truth of each frame ``--keyframes`` lists),
`longanimation evaluate` against the ground truth with the
region maps; the same frames are scored again flattened to one color per area
of the line art, exactly as `longanimation colorize --flat` writes them
(:func:`longanimation.pipeline.flat_colors.flatten_shot`), and the output of
`colorize --flat --track-regions` (a second run: tracking flattens the
model's own frames, not the plain output). Frames whose line
art repeats a keyframe's (a held drawing) are left out of the evaluation, and
so is everything before the first keyframe's drawing changes: the pipeline
returns the keyframe itself there, which would inflate PSNR. Writes one JSON report per
seed and summary.json / summary.md (mean and spread of short-term = first 14
evaluated frames, and long-term = all of them), with the ceiling the model's
VAE sets: the PSNR of the ground truth passed through its encoder and decoder
(segment-sized chunks, at the model's frame size), and the trivial baseline of
copying the nearest keyframe to every evaluated frame (same frames and sizes,
PSNR per frame then averaged, short- and long-term), also per seed.
The color error of each object (ΔE) is summarised, for each output, for the
background, the characters and props the first evaluated frame shows, and
those entering later. Each PSNR is also given over the pixels of regions a keyframe shows
(`longanimation evaluate --keyframe-ids`), with the share of pixels it does
not show: the part of the long-term decay no reference-based method can avoid,
and the long-term PSNR each output would reach if the pixels a keyframe shows
kept their short-term error (``psnr_long_without_covered_decay``).

The summary is rewritten after every shot, and a rerun with the same model
weights (not only the same folder), code, frames and size skips the seeds it
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
import shlex
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
from longanimation.evaluation.frame_metrics import SHORT_TERM_FRAMES
from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.pipeline.flat_colors import flatten_shot
from longanimation.provenance import code_digest


def run(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "longanimation", *map(str, args)], check=True)


def link_frames(source: Path, target: Path, frames: list[int]) -> None:
    """Symlink the files of ``source`` at positions ``frames`` (natural order) into ``target``."""
    target.mkdir(parents=True)
    paths = sorted(source.iterdir())
    for index in frames:
        (target / paths[index].name).symlink_to(paths[index].resolve())


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


def keyframes_of(text: str) -> list[int]:
    frames = sorted({int(frame) for frame in text.split(",")})
    if frames[0] != 0:
        raise SystemExit("--keyframes must include frame 0 (short-term is measured from it)")
    return frames


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
    parser.add_argument("--colorize-args", default="", help='more colorize options, e.g. "--correspondence none"')
    parser.add_argument("--keyframes", type=keyframes_of, default=[0],
                        help="comma-separated frames whose ground truth is given as keyframes (default: 0)")
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
    setting = {"model": args.model, "weights": model.weights_digest(), "code": code_digest(),
               "frames": args.frames, "size": args.size, "colorize_args": args.colorize_args,
               "outputs": list(OUTPUTS), "metrics": [*METRICS, HELD], "keyframes": args.keyframes}
    previous = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    done = {row["seed"]: row for row in previous.get("shots", []) if all(previous.get(k) == v for k, v in setting.items())}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for seed in (seed for seed in seeds if seed not in done):
            done[seed] = score_seed(args, model, seed, scratch, out)
            print(done[seed], flush=True)
            write_summary(out, setting, args.seeds, [done[seed] for seed in seeds if seed in done])


# key prefix of a row's metrics -> what produced the frames
OUTPUTS = {"": "colorize", "flat_": "colorize --flat", "tracked_": "colorize --flat --track-regions"}
TERMS = (("short_term", "short"), ("long_term", "long"))  # row key part -> evaluate's keyframe-coverage suffix
METRICS = ("psnr", "ssim", "covered_psnr")
HELD = "long_term_without_covered_decay_psnr"  # evaluate's psnr_long_without_covered_decay


def write_flat_output(pred: Path, lineart: list[np.ndarray], keyframes: dict[int, np.ndarray]) -> None:
    """``colorize --flat`` (PRED-flat/) from the plain output PRED."""
    paths = sorted(pred.iterdir())
    frames = np.stack([np.asarray(Image.open(path).convert("RGB")) for path in paths])
    sketches = np.stack([image_to_lineart(sketch) for sketch in lineart])
    target = pred.with_name(f"{pred.name}-flat")
    target.mkdir()
    for path, frame in zip(paths, flatten_shot(frames, sketches, keyframes), strict=True):
        Image.fromarray(frame).save(target / path.name)


def score_seed(args: argparse.Namespace, model: LongAnimationModel, seed: int, scratch: Path, out: Path) -> dict:
    """Generate, colorize and evaluate one toon shot; its row of the summary."""
    shot = scratch / f"shot-{seed}"
    run("toon", "generate", "--frames", args.frames, "--size", args.size, "--seed", seed, shot)
    return {"seed": seed, **score_shot(args, model, shot, f"seed-{seed}", seed, scratch, out)}


def score_shot(
    args: argparse.Namespace, model: LongAnimationModel, shot: Path, name: str, seed: int, scratch: Path, out: Path
) -> dict:
    """Colorize toon shot folder ``shot`` from its keyframes (``--seed seed``), evaluate; writes ``out/NAME[-flat].json``."""
    pred = scratch / f"pred-{name}"
    manifest = json.loads((shot / "manifest.json").read_text())
    color_files = sorted((shot / "color").iterdir())
    keyframe_options = [x for k in args.keyframes for x in ("-k", f"{color_files[k]}@{k}")]
    tracked = scratch / f"pred-{name}-tracked"
    for folder, flags in ((pred, ()), (tracked, ("--flat", "--track-regions"))):
        run("colorize", shot / "lineart", folder, *keyframe_options, "--prompt", manifest["caption"], "--model",
            args.model, "--seed", seed, "--quiet", *shlex.split(args.colorize_args), *flags)
    return score_outputs(args, model, shot, name, pred / "frames", tracked / "frames", scratch, out)


def score_outputs(
    args: argparse.Namespace, model: LongAnimationModel, shot: Path, name: str, plain: Path, tracked: Path | None,
    scratch: Path, out: Path,
) -> dict:
    """Evaluate the frames of ``colorize`` (``plain``), flattened as ``--flat`` writes them, and of ``colorize
    --flat --track-regions`` (``tracked``; None: not scored) against toon shot ``shot``; one row of the summary."""
    region_files = sorted((shot / "regions").iterdir())
    lineart = [np.asarray(Image.open(path)) for path in sorted((shot / "lineart").iterdir())]
    start = next(i for i, sketch in enumerate(lineart) if not np.array_equal(sketch, lineart[0]))
    frames = [i for i in range(start, len(lineart))
              if not any(np.array_equal(lineart[i], lineart[k]) for k in args.keyframes)]
    color = read_shot(shot / "color").frames
    write_flat_output(plain, lineart, {k: color[k] for k in args.keyframes})
    evaluated = scratch / f"eval-{name}"
    outputs = {"": (plain, "pred", out / f"{name}.json"),
               "flat_": (plain.with_name(f"{plain.name}-flat"), "pred-flat", out / f"{name}-flat.json")}
    if tracked is not None:
        outputs["tracked_"] = (tracked, "pred-tracked", out / f"{name}-tracked.json")
    for folder, part, _ in outputs.values():
        link_frames(folder, evaluated / part, frames)
    for part, folder in (("lineart", shot / "lineart"), ("gt", shot / "color"), ("ids", shot / "regions")):
        link_frames(folder, evaluated / part, frames)
    (evaluated / "manifest.json").symlink_to((shot / "manifest.json").resolve())
    metrics = {}
    for prefix, (_, part, report_path) in outputs.items():
        run("evaluate", "--pred", evaluated / part, "--gt", evaluated / "gt", "--ids", evaluated / "ids",
            *(x for k in args.keyframes for x in ("--keyframe-ids", region_files[k])),
            "--segment-length", 13, "--out", report_path, "--quiet")
        report = json.loads(report_path.read_text())
        table, coverage = report["table"], report["keyframe_coverage"]
        metrics |= {prefix + key: value for key, value in object_errors(report["consistency"]["objects"]).items()}
        for term, short_name in TERMS:
            metrics |= {f"{prefix}{term}_{metric}": table[term][metric] for metric in ("psnr", "ssim")}
            metrics[f"{prefix}{term}_covered_psnr"] = coverage[f"covered_psnr_{short_name}"]
            metrics[f"{term}_uncovered_fraction"] = coverage[f"uncovered_fraction_{short_name}"]
        metrics[prefix + HELD] = coverage["psnr_long_without_covered_decay"]
    ceiling = vae_round_trip_psnr(model, color)
    nearest = [min(args.keyframes, key=lambda k: abs(k - i)) for i in frames]
    # per frame, then averaged, as evaluate scores the outputs
    copy_error = np.square((color[frames].astype(np.float64) - color[nearest]) / 255).mean(axis=(1, 2, 3))
    copy_psnr = 10 * np.log10(1 / np.maximum(copy_error, 1e-10))
    return {"skipped_keyframe_frames": len(lineart) - len(frames), "vae_round_trip_psnr": round(ceiling, 3),
            "keyframe_copy_short_term_psnr": round(float(copy_psnr[:SHORT_TERM_FRAMES].mean()), 3),
            "keyframe_copy_long_term_psnr": round(float(copy_psnr.mean()), 3), **metrics}


def object_errors(objects: list[dict]) -> dict:
    """Mean ΔE of the background (object 0), and of the characters/props shown in the first evaluated frame or not."""
    def mean(values: list[float]) -> float | None:
        return round(float(np.mean(values)), 3) if values else None

    seen = [o for o in objects[1:] if o["mean_delta_e"] is not None]
    return {"background_delta_e": objects[0]["mean_delta_e"],
            "shown_objects_delta_e": mean([o["mean_delta_e"] for o in seen if not o["absent_in_frame_0"]]),
            "unshown_objects_delta_e": mean([o["mean_delta_e"] for o in seen if o["absent_in_frame_0"]])}


def write_summary(out: Path, setting: dict, seeds: str, rows: list[dict]) -> None:
    """summary.json and summary.md: mean and spread over ``rows``."""
    summary = {**setting, "shots": rows}
    metrics = [f"{prefix}{term}_{metric}" for prefix in OUTPUTS for term, _ in TERMS for metric in METRICS]
    uncovered = [f"{term}_uncovered_fraction" for term, _ in TERMS]
    errors = [f"{prefix}{key}" for prefix in OUTPUTS
              for key in ("background_delta_e", "shown_objects_delta_e", "unshown_objects_delta_e")]
    held = [f"{prefix}{HELD}" for prefix in OUTPUTS]
    copies = [f"keyframe_copy_{term}_psnr" for term, _ in TERMS]
    for key in (*metrics, *held, *uncovered, *errors, *copies, "vae_round_trip_psnr"):
        values = np.array([row[key] for row in rows if row[key] is not None])
        summary[key] = {"mean": round(float(values.mean()), 3), "std": round(float(values.std()), 3)}
    with atomic_file(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    lines = [
        f"# Toon shots never seen in training: {len(rows)} seeds, {setting['frames']} frames at "
        f"{setting['size']}x{setting['size']}",
        "",
        f"Command: `python benchmarks/tiny_quality.py --model {setting['model']} --seeds {seeds} "
        f"--frames {setting['frames']} --size {setting['size']}"
        + ("" if setting["keyframes"] == [0] else f" --keyframes {','.join(map(str, setting['keyframes']))}")
        + (f" --colorize-args {shlex.quote(setting['colorize_args'])}" if setting.get("colorize_args") else "") + "`",
        "",
        "| output | frames | PSNR (dB) | SSIM | PSNR on pixels a keyframe shows (dB) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for term, label in (("short_term", "short-term (first 14)"), ("long_term", "long-term (whole shot)")):
        copy = summary[f"keyframe_copy_{term}_psnr"]
        lines.append(f"| copy the nearest keyframe | {label} | {copy['mean']:.2f} ± {copy['std']:.2f} |  |  |")
    for prefix, command in OUTPUTS.items():
        for term, label in (("short_term", "short-term (first 14)"), ("long_term", "long-term (whole shot)")):
            psnr, ssim = summary[f"{prefix}{term}_psnr"], summary[f"{prefix}{term}_ssim"]
            covered = summary[f"{prefix}{term}_covered_psnr"]
            lines.append(f"| `{command}` | {label} | {psnr['mean']:.2f} ± {psnr['std']:.2f} "
                         f"| {ssim['mean']:.3f} ± {ssim['std']:.3f} | {covered['mean']:.2f} ± {covered['std']:.2f} |")
    short, long = (summary[key] for key in uncovered)
    lines += ["", f"Keyframes at frames {', '.join(map(str, setting['keyframes']))}. "
              f"Pixels of regions no keyframe shows (colors no reference gives): short-term "
              f"{100 * short['mean']:.2f}%, long-term {100 * long['mean']:.2f} ± {100 * long['std']:.2f}% "
              "(`longanimation evaluate --keyframe-ids`). Long-term PSNR if the pixels a keyframe shows kept "
              "their short-term error all shot long (what decay remains is on pixels no keyframe shows): "
              + ", ".join(f"`{command}` {summary[prefix + HELD]['mean']:.2f} ± {summary[prefix + HELD]['std']:.2f} dB"
                          for prefix, command in OUTPUTS.items()) + "."]
    lines += ["", "Mean color error per object (ΔE in CIELAB, `evaluate --ids`; 2.3 is just noticeable):", "",
              "| output | background | characters and props in the first evaluated frame | those entering later |",
              "| --- | --- | --- | --- |"]
    for prefix, command in OUTPUTS.items():
        cells = [summary[f"{prefix}{key}"] for key in ("background_delta_e", "shown_objects_delta_e", "unshown_objects_delta_e")]
        lines.append(f"| `{command}` | " + " | ".join(f"{c['mean']:.1f} ± {c['std']:.1f}" for c in cells) + " |")
    ceiling = summary["vae_round_trip_psnr"]
    lines += ["", f"Ceiling set by the model's VAE (ground truth encoded and decoded, native size): "
              f"{ceiling['mean']:.2f} ± {ceiling['std']:.2f} dB (the model's own frames; what correspondence "
              "carries from a keyframe is not bound by it).", "",
              "Per seed, PSNR (dB) over the first 14 evaluated frames / the whole shot:", "",
              "| seed | copy the nearest keyframe | " + " | ".join(f"`{c}`" for c in OUTPUTS.values()) + " |",
              "| --- | --- |" + " --- |" * len(OUTPUTS)]
    for row in rows:
        cells = [tuple(row[f"keyframe_copy_{t}_psnr"] for t, _ in TERMS)]
        cells += [tuple(row[f"{prefix}{t}_psnr"] for t, _ in TERMS) for prefix in OUTPUTS]
        lines.append(f"| {row['seed']} | " + " | ".join("{:.2f} / {:.2f}".format(*pair) for pair in cells) + " |")
    with atomic_file(out / "summary.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
