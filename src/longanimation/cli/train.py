"""``longanimation train``: run one training stage from a YAML config (on accelerate).

One process by default; ``accelerate launch --multi_gpu --num_processes N -m
longanimation train ...`` runs DDP (on a machine without GPUs accelerate
falls back to CPU processes talking over gloo). See ``configs/train/README.md``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app


@app.command("train")
def train(
    config: Path = typer.Option(..., "--config", help="Training config (YAML), e.g. configs/train/tiny-vae.yaml."),
    stage: str = typer.Option(
        None, help="vae, base, memory-model, sketchdit, memory or reward (default: the config's stage)."
    ),
    output: Path = typer.Option(None, help="Run folder (default: the config's output)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest complete checkpoint of the run."),
    max_steps: int = typer.Option(
        None, "--max-steps", min=1, help="Stop after this global step (the LR schedule still follows the config)."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar or notes."),
) -> None:
    """Train one stage; writes checkpoints, log.csv, loss.png and the updated model folder OUTPUT/model/."""
    from ..training.config import load_config
    from ..training.trainer import train as run

    settings = load_config(config, stage=stage, output=None if output is None else str(output))
    run(settings, resume=resume, stop_at=max_steps, quiet=quiet)
