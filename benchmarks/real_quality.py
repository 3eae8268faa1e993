"""Colorization quality on the real-animation shots of benchmarks/real_shots.py.

    python benchmarks/real_quality.py [--shots /work/real-shots] [--split test] [--model DIR]
        [--variant NAME=FLAGS ...] [--only SHOT ...] [--out benchmarks/results/real-quality] [--keep DIR]

For every shot of the split (its ``manifest.json`` says which), each variant
runs ``python -m longanimation colorize SHOT/lineart OUT --keyframe
SHOT/color/00000.png --quiet [--model DIR] FLAGS`` in a subprocess; the
default variants are ``plain=`` (no flags), ``flat=--flat`` and
``tracked=--flat --track-regions``. The baseline ``copy-keyframe`` shows the
keyframe in every frame.

Scores follow the protocol of :mod:`longanimation.evaluation.frame_metrics`:
frames resized to 256x256, [0, 1] range, PSNR per frame, then averaged;
``short`` over the first 14 frames after the keyframe, ``long`` over every
frame after it (the keyframe frame itself is never scored). Seconds per frame
is the wall time of the colorize subprocess (model loading included) over
the shot's frame count.

Each (shot, variant flags, model weights digest, code digest, shot content digest) result
is cached under ``OUT/cache/SHOT/``; the copy-keyframe baseline does not
depend on the model and is cached per shot content. ``summary.json`` and
``summary.md`` are rewritten after each shot, so an interrupted run goes on
where it stopped when started again; with ``--only`` the other shots of the
split still appear there with whatever their cache holds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from longanimation.atomic import atomic_file
from longanimation.data.video_io import list_image_files, read_image
from longanimation.evaluation.frame_metrics import SHORT_TERM_FRAMES, psnr_per_frame, to_protocol
from longanimation.provenance import code_digest

DEFAULT_SHOTS = Path("/work/real-shots")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "real-quality"
DEFAULT_VARIANTS = ["plain=", "flat=--flat", "tracked=--flat --track-regions"]
BASELINE = "copy-keyframe"
SHOTS_GENERATOR = "longanimation.benchmarks.real_shots"
CHUNK = 32


def parse_variant(spec: str) -> tuple[str, list[str]]:
    name, sep, flags = spec.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"--variant takes NAME=FLAGS, got {spec!r}")
    return name.strip(), shlex.split(flags)


def find_shots(folder: Path, split: str) -> list[tuple[Path, dict]]:
    shots = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name.startswith("."):  # a shot being written
            continue
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        if manifest.get("generator") == SHOTS_GENERATOR and (split == "all" or manifest.get("split") == split):
            shots.append((path, manifest))
    return shots


def psnr_frames(pred_files: list[Path], truth_files: list[Path]) -> np.ndarray:
    """Per-frame PSNR (dB) at the protocol size, read and resized ``CHUNK`` frames at a time."""
    if len(pred_files) != len(truth_files):
        raise ValueError(f"{len(pred_files)} colored frames for {len(truth_files)} ground-truth frames")
    values = []
    for start in range(0, len(truth_files), CHUNK):
        truth = to_protocol(np.stack([read_image(p) for p in truth_files[start:start + CHUNK]]))
        pred = to_protocol(np.stack([read_image(p) for p in pred_files[start:start + CHUNK]]))
        values.append(psnr_per_frame(pred, truth))
    return np.concatenate(values)


def keyframe_psnr(key_file: Path, truth_files: list[Path]) -> np.ndarray:
    key = to_protocol(read_image(key_file)[None])
    values = []
    for start in range(0, len(truth_files), CHUNK):
        truth = to_protocol(np.stack([read_image(p) for p in truth_files[start:start + CHUNK]]))
        values.append(psnr_per_frame(np.broadcast_to(key, truth.shape), truth))
    return np.concatenate(values)


def scores(per_frame: np.ndarray) -> dict:
    """short = frames 1..14, long = frames 1..T-1 (frame 0 is the keyframe)."""
    after = per_frame[1:]
    return {
        "psnr_short": round(float(after[:SHORT_TERM_FRAMES].mean()), 3) if len(after) else None,
        "psnr_long": round(float(after.mean()), 3) if len(after) else None,
        "psnr_per_frame": [round(float(v), 3) for v in per_frame],
    }


def shot_digest(shot: Path) -> str:
    """16 hex digits over what colorize reads and what is scored: every line-art file, the keyframe and the
    sizes of the color frames (a rebuilt shot with other line art or pictures gets new cache entries)."""
    digest = hashlib.sha256()
    for file in list_image_files(shot / "lineart"):
        digest.update(file.name.encode() + file.read_bytes())
    color = list_image_files(shot / "color")
    digest.update(color[0].read_bytes())
    digest.update(" ".join(f"{f.name}:{f.stat().st_size}" for f in color).encode())
    return digest.hexdigest()[:16]


def model_digest(model: Path | None) -> str:
    from longanimation.cli.colorize import DEFAULT_MODEL
    from longanimation.models.longanimation_model import LongAnimationModel

    return LongAnimationModel.from_pretrained(model or DEFAULT_MODEL).weights_digest()


def write_json(path: Path, data: dict) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")


def run_variant(
    shot: Path, flags: list[str], model: Path | None, work: Path, keep: Path | None = None
) -> tuple[dict, float]:
    """Colorize ``shot`` with ``flags`` and score it; the output folder moves to ``keep`` when given."""
    truth_files = list_image_files(shot / "color")
    out = Path(tempfile.mkdtemp(prefix=f"{shot.name}.", dir=work)) / "out"
    command = [sys.executable, "-m", "longanimation", "colorize", str(shot / "lineart"), str(out),
               "--keyframe", str(truth_files[0]), "--quiet"]
    if model is not None:
        command += ["--model", str(model)]
    command += flags
    try:
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"colorize failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}")
        pred_files = list_image_files(out / "frames")
        result = scores(psnr_frames(pred_files, truth_files)), seconds
        if keep is not None:
            keep.parent.mkdir(parents=True, exist_ok=True)
            out.rename(keep)
        return result
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def markdown(summary: dict) -> str:
    lines = [
        "# Colorization quality on real-animation shots",
        "",
        f"Shots: `{summary['shots_folder']}` (split {summary['split']}); model `{summary['model']}` "
        f"(weights {summary['weights_digest']}). PSNR (dB) at 256x256, [0, 1] range, per frame then averaged; "
        f"short = first {SHORT_TERM_FRAMES} frames after the keyframe, long = every frame after it; "
        "s/frame = colorize wall time (model loading included) / frames.",
        "",
    ]
    methods = [BASELINE, *summary["variants"]]
    means = {m: {"psnr_short": [], "psnr_long": []} for m in methods}
    for name, shot in summary["shots"].items():
        lines += [f"## {name}", "", f"{shot['width']}x{shot['height']}, {shot['frames']} frames, "
                  f"sources {', '.join(shot['sources'])}: {shot['caption']}", "",
                  "| method | flags | short PSNR | long PSNR | s/frame |", "|---|---|---:|---:|---:|"]
        for method in methods:
            row = shot["results"].get(method)
            flags = "" if method == BASELINE else " ".join(summary["variants"][method]) or "(none)"
            if row is None:
                lines.append(f"| {method} | {flags} | | | |")
            elif "error" in row:
                lines.append(f"| {method} | {flags} | failed: {row['error'][:120]} | | |")
            else:
                spf = "" if row.get("seconds_per_frame") is None else f"{row['seconds_per_frame']:.3f}"
                lines.append(f"| {method} | {flags} | {row['psnr_short']:.2f} | {row['psnr_long']:.2f} | {spf} |")
                for key in ("psnr_short", "psnr_long"):
                    means[method][key].append(row[key])
        lines.append("")
    complete = [n for n, s in summary["shots"].items() if all("psnr_long" in s["results"].get(m, {}) for m in methods)]
    if complete:
        lines += [f"## Mean over the {len(complete)} shots every method finished", "",
                  "| method | short PSNR | long PSNR |", "|---|---:|---:|"]
        for method in methods:
            short = np.mean([summary["shots"][n]["results"][method]["psnr_short"] for n in complete])
            long = np.mean([summary["shots"][n]["results"][method]["psnr_long"] for n in complete])
            lines.append(f"| {method} | {short:.2f} | {long:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shots", type=Path, default=DEFAULT_SHOTS, help=f"folder built by real_shots.py ({DEFAULT_SHOTS})")
    parser.add_argument("--split", choices=["test", "train", "all"], default="test")
    parser.add_argument("--variant", action="append", type=parse_variant, default=None,
                        help="NAME=FLAGS for colorize (repeat); default: " + ", ".join(DEFAULT_VARIANTS))
    parser.add_argument("--model", type=Path, default=None, help="model folder passed to colorize")
    parser.add_argument("--only", nargs="*", default=None, help="score only these shot names")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results folder ({DEFAULT_OUT})")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep each run's output folder as KEEP/SHOT/VARIANT (must not exist yet)")
    args = parser.parse_args(argv)
    variants = dict(args.variant or [parse_variant(v) for v in DEFAULT_VARIANTS])
    shots = find_shots(args.shots, args.split)
    if args.only:
        unknown = set(args.only) - {p.name for p, _ in shots}
        if unknown:
            print(f"real_quality: no {args.split} shot named {', '.join(sorted(unknown))} in {args.shots}", file=sys.stderr)
            return 2
    if not shots:
        print(f"real_quality: no {args.split} shots in {args.shots} (build them with benchmarks/real_shots.py)",
              file=sys.stderr)
        return 2
    digest = model_digest(args.model)
    code = code_digest()
    cache = args.out / "cache"
    work = args.out / ".work"
    work.mkdir(parents=True, exist_ok=True)
    summary = {"shots_folder": str(args.shots), "split": args.split,
               "model": str(args.model) if args.model else "shipped tiny model", "weights_digest": digest,
               "code_digest": code,
               "variants": {name: flags for name, flags in variants.items()}, "short_frames": SHORT_TERM_FRAMES,
               "protocol_size": 256, "shots": {}}
    for path, manifest in shots:
        entry = {key: manifest.get(key) for key in ("width", "height", "frames", "sources", "caption")}
        entry["results"] = {}
        summary["shots"][path.name] = entry
        truth_files = list_image_files(path / "color")
        content = shot_digest(path)
        skipped = bool(args.only) and path.name not in args.only  # summarised from its cache, not run
        base_file = cache / path.name / f"{BASELINE}-{content}.json"
        if base_file.is_file():
            entry["results"][BASELINE] = json.loads(base_file.read_text())
        elif skipped:
            del summary["shots"][path.name]
            continue
        else:
            row = scores(keyframe_psnr(truth_files[0], truth_files)) | {"seconds_per_frame": None}
            write_json(base_file, row)
            entry["results"][BASELINE] = row
        for name, flags in variants.items():
            key = hashlib.sha256(" ".join(flags).encode()).hexdigest()[:8]
            file = cache / path.name / f"{name}-{key}-{digest}-{code}-{content}.json"
            if file.is_file():
                entry["results"][name] = row = json.loads(file.read_text())
                if not skipped:
                    print(f"{path.name} {name}: cached, short {row['psnr_short']:.2f} long {row['psnr_long']:.2f} dB")
                continue
            if skipped:
                continue
            try:
                kept = None if args.keep is None else args.keep / path.name / name
                row, seconds = run_variant(path, flags, args.model, work, kept)
            except (RuntimeError, ValueError) as error:
                entry["results"][name] = {"error": str(error)}
                print(f"{path.name} {name}: {error}", file=sys.stderr)
                continue
            row |= {"flags": flags, "seconds": round(seconds, 2), "seconds_per_frame": round(seconds / len(truth_files), 4)}
            write_json(file, row)
            entry["results"][name] = row
            print(f"{path.name} {name}: short {row['psnr_short']:.2f} long {row['psnr_long']:.2f} dB, "
                  f"{row['seconds_per_frame']:.3f} s/frame", flush=True)
        base = entry["results"][BASELINE]
        if not skipped:
            print(f"{path.name} {BASELINE}: short {base['psnr_short']:.2f} long {base['psnr_long']:.2f} dB", flush=True)
        compact = json.loads(json.dumps(summary))
        for shot in compact["shots"].values():
            for row in shot["results"].values():
                row.pop("psnr_per_frame", None)
        write_json(args.out / "summary.json", compact)
        with atomic_file(args.out / "summary.md") as tmp:
            tmp.write_text(markdown(compact))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
