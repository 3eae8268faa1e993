"""A change to the correspondence on the toon seeds, scored exactly as tiny_quality.py scores ``colorize``.

    python benchmarks/toon_replay.py --model DIR --cache DIR [--seeds 100-109] [--out DIR]

``colorize`` is the model's frames of ``colorize --correspondence none``
carried frame by frame (``tests/test_correspondence.py``), so the model runs
once per seed, into ``CACHE/none-SEED`` (with the shot in ``CACHE/shot-SEED``,
``toon generate --frames 300 --size 128``; both are made when missing, as
tiny_quality.py makes them: keyframe 0, the manifest's caption, ``--seed
SEED``), and every later change to ``pipeline/correspondence.py`` is scored
from those frames in minutes instead of a model run per seed. The plain
and ``--flat`` outputs are evaluated by ``tiny_quality.score_outputs``; the
tracked output (``--flat --track-regions``) skips the correspondence, so it
is not scored here. Writes ``OUT/seed-SEED.json`` per seed (a rerun with the same weights and
code skips it, so runs over parts of the seeds can share ``OUT``) and
``OUT/summary.json`` and ``OUT/summary.md`` over ``--seeds``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from longanimation.atomic import atomic_file
from longanimation.models.longanimation_model import LongAnimationModel
from longanimation.provenance import code_digest


def _beside(name: str):
    """The benchmark script ``name``.py next to this one, as a module."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tiny_quality, correspondence_replay = _beside("tiny_quality"), _beside("correspondence_replay")

FRAMES, SIZE = 300, 128


def model_frames(model: str, cache: Path, seed: int) -> tuple[Path, Path]:
    """The toon shot of ``seed`` and the model's ``--correspondence none`` frames of it, made when missing."""
    shot, none = cache / f"shot-{seed}", cache / f"none-{seed}"
    if not (shot / "manifest.json").exists():
        tiny_quality.run("toon", "generate", "--frames", FRAMES, "--size", SIZE, "--seed", seed, shot)
    if not (none / "colorized.mp4").exists():  # written last: the run finished
        manifest = json.loads((shot / "manifest.json").read_text())
        keyframe = min((shot / "color").iterdir())
        tiny_quality.run("colorize", shot / "lineart", none, "-k", f"{keyframe}@0", "--prompt", manifest["caption"],
                         "--model", model, "--seed", seed, "--quiet", "--correspondence", "none")
    return shot, none / "frames"


def carry_shot(shot: Path, frames: Path, target: Path) -> None:
    """``colorize``'s frames of ``shot`` made from the model's ``frames``, one PNG per frame into ``target``."""
    target.mkdir(parents=True)
    for index, image in enumerate(correspondence_replay.carried_frames(shot, frames)):
        Image.fromarray(image).save(target / f"{index:05d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--cache", type=Path, required=True, help="toon shots and the model's frames of them")
    parser.add_argument("--seeds", default="100-109")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/toon-replay"))
    args = parser.parse_args()
    model = LongAnimationModel.from_pretrained(args.model).eval()
    setting = {"model": args.model, "weights": model.weights_digest(), "code": code_digest()}
    scoring = argparse.Namespace(keyframes=[0])
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in tiny_quality.seeds_of(args.seeds):
        done = args.out / f"seed-{seed}.json"  # a rerun of the same weights and code skips the seed
        if done.exists() and all(json.loads(done.read_text()).get(k) == v for k, v in setting.items()):
            rows.append(json.loads(done.read_text())["row"])
            continue
        shot, frames = model_frames(args.model, args.cache, seed)
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            carry_shot(shot, frames, scratch / "colorize" / "frames")
            row = tiny_quality.score_outputs(scoring, model, shot, f"seed-{seed}", scratch / "colorize" / "frames",
                                             None, scratch, scratch)
        rows.append({"seed": seed, **{key: row[key] for key in KEYS}})
        with atomic_file(done) as tmp:
            tmp.write_text(json.dumps({**setting, "row": rows[-1]}, indent=1) + "\n")
        print(rows[-1], flush=True)
    write_summary(args, setting, rows)


KEYS = ("keyframe_copy_short_term_psnr", "keyframe_copy_long_term_psnr", "short_term_psnr", "long_term_psnr",
        "flat_short_term_psnr", "flat_long_term_psnr")


def write_summary(args: argparse.Namespace, setting: dict, rows: list[dict]) -> None:
    mean = {key: float(np.mean([row[key] for row in rows])) for key in KEYS}
    summary = {**setting, "seeds": args.seeds, "shots": rows, "mean": {key: round(v, 3) for key, v in mean.items()}}
    with atomic_file(args.out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    lines = [f"# The correspondence on toon seeds {args.seeds}, replayed over the model's frames", "",
             f"Command: `python benchmarks/toon_replay.py --model {args.model} --cache CACHE --seeds {args.seeds}`; "
             f"weights {summary['weights']}, code {summary['code']}; {FRAMES} frames at {SIZE}x{SIZE}, PSNR (dB) over "
             "the first 14 evaluated frames / the shot, as `tiny_quality.py` evaluates.", "",
             "| seed | copy the keyframe | `colorize` | `--flat` |", "| --- | --- | --- | --- |"]
    for row in [*rows, {"seed": f"mean of {len(rows)}", **mean}]:
        cells = [f"{row[f'{prefix}short_term_psnr']:.2f} / {row[f'{prefix}long_term_psnr']:.2f}"
                 for prefix in ("keyframe_copy_", "", "flat_")]
        lines.append(f"| {row['seed']} | " + " | ".join(cells) + " |")
    with atomic_file(args.out / "summary.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
