"""``longanimation toon generate``: write a synthetic cel-animation shot with its ground truth.

The output folder layout is described in :mod:`longanimation.data.toon`.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ..data.toon import ToonConfig, ToonWorld, write_world
from ..errors import UserError
from .app import app

toon_app = typer.Typer(
    help="Synthetic cel-animation shots (toon worlds) with exact ground truth, for training and benchmarks.",
    no_args_is_help=True,
)
app.add_typer(toon_app, name="toon")


@toon_app.command("generate")
def generate(
    out: Path = typer.Argument(..., help="Output folder (created; an earlier toon world there is replaced)."),
    frames: int = typer.Option(600, help="Number of frames."),
    size: int = typer.Option(256, help="Frame width and height in pixels."),
    width: int = typer.Option(None, help="Frame width in pixels (default: --size)."),
    height: int = typer.Option(None, help="Frame height in pixels (default: --size)."),
    seed: int = typer.Option(0, help="Seed: the same seed and sizes give byte-identical output."),
    fps: int = typer.Option(24, help="Frame rate recorded in the manifest."),
) -> None:
    """Render a toon world: color frames, line art, region-id maps and a JSON manifest."""
    if not ToonConfig.MIN_SIZE <= size <= ToonConfig.MAX_SIZE:
        raise UserError(f"--size must be between {ToonConfig.MIN_SIZE} and {ToonConfig.MAX_SIZE} pixels, got {size}")
    config = ToonConfig(seed=seed, frames=frames, height=size if height is None else height,
                        width=size if width is None else width, fps=fps)
    started = time.perf_counter()
    world = ToonWorld(config)
    write_world(world, out)
    seconds = time.perf_counter() - started
    typer.echo(f"wrote {config.frames} frames ({config.width}x{config.height}), {len(world.objects)} objects, "
               f"{world.region_count - 1} regions to {out} in {seconds:.1f} s")
