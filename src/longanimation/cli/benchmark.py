"""``longanimation benchmark``: the paper's experiments and our speed/memory scaling as commands."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from ..errors import UserError
from .app import app

benchmark_app = typer.Typer(help="Benchmarks: the paper's ablations and our speed/memory scaling.", no_args_is_help=True)
app.add_typer(benchmark_app, name="benchmark")


def _lengths(text: str) -> list[int]:
    try:
        lengths = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise UserError(f"--lengths takes comma-separated frame counts, got {text!r}") from None
    if not lengths or lengths[0] < 20:
        raise UserError("--lengths needs frame counts of at least 20")
    return lengths


@benchmark_app.command("speed")
def speed(
    lengths: str = typer.Option("200,500,1000,2000", help="Shot lengths in frames, comma-separated."),
    size: int = typer.Option(128, help="Frame size (square)."),
    model: Path = typer.Option(None, help="Model folder (default: tiny preset with random weights; timing only)."),
    threads: int = typer.Option(2, help="Torch threads per run."),
    out: Path = typer.Option(Path("benchmarks/results/speed"), help="Output folder."),
) -> None:
    """Per-segment time and peak memory vs shot length: streaming memory vs re-encoding, DGLM overhead, held drawings."""
    from ..evaluation.speed import run_speed_benchmark

    if model is not None and not model.is_dir():
        raise UserError(f"model folder {model} does not exist")
    command = "longanimation " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
    summary = run_speed_benchmark(
        _lengths(lengths), out, size=size, model_dir=str(model) if model else None, threads=threads, command=command
    )
    typer.echo(f"wrote {out}/speed.md, speed.json, speed.png (DGLM overhead {summary['dglm_overhead']}x, "
               f"held drawings {summary['held_drawing_speedup']}x)")


@benchmark_app.command("ablation")
def ablation(
    model: Path = typer.Option(None, help="Final model folder (default: the shipped tiny model)."),
    model_before_ccr: Path = typer.Option(
        None, help="The model before the reward stage (Table 2 rows 0-3 and the + CCR comparison)."
    ),
    seeds: str = typer.Option("100,101,102", help="Toon world seeds, never used in training."),
    frames: int = typer.Option(300, help="Frames per shot."),
    size: int = typer.Option(128, help="Frame size (square)."),
    steps: int = typer.Option(None, help="Sampling steps of Table 2 and the paradigms (default: the model's)."),
    table3_steps: int = typer.Option(5, help="Sampling steps of Table 3 (t_st is scaled to them from 50)."),
    tables: str = typer.Option("2,3,paradigms", help="Which tables to run: comma-separated 2, 3, paradigms."),
    out: Path = typer.Option(Path("benchmarks/results/ablation"), help="Output folder."),
) -> None:
    """Table 2 (modules), Table 3 (fusion start) and the comparison paradigms: mean and spread over seeds."""
    from ..evaluation.ablation import TABLES, run_ablation
    from ..models.longanimation_model import LongAnimationModel
    from .colorize import DEFAULT_MODEL

    try:
        seed_list = [int(seed) for seed in seeds.split(",") if seed.strip()]
    except ValueError:
        raise UserError(f"--seeds takes comma-separated integers, got {seeds!r}") from None
    if not seed_list or frames < 20:
        raise UserError("--seeds needs at least one seed and --frames at least 20")
    if (steps is not None and steps < 1) or table3_steps < 1:
        raise UserError("--steps and --table3-steps must be at least 1")
    chosen = [name.strip().lower() for name in tables.split(",") if name.strip()]
    if not chosen or any(name not in TABLES for name in chosen):
        raise UserError(f"--tables takes comma-separated 2, 3, paradigms; got {tables!r}")
    models = {"final": LongAnimationModel.from_pretrained(model or DEFAULT_MODEL)}
    if model_before_ccr is not None:
        models["before-ccr"] = LongAnimationModel.from_pretrained(model_before_ccr)
    command = "longanimation " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
    run_ablation(
        models, seed_list, frames, size, out, steps=steps, table3_steps=table3_steps,
        tables=tuple(TABLES[name] for name in chosen), command=command, report=typer.echo
    )
    typer.echo(f"wrote {out}/ablation.md, ablation.json, psnr_over_frames.png, frequency_decay.png")
