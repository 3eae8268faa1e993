"""``longanimation probe`` and ``longanimation convert``: look at and convert shots."""

from __future__ import annotations

from pathlib import Path

import typer

from ..data.video_io import check_output, read_shot, write_frames
from .app import app


@app.command("probe")
def probe(source: Path = typer.Argument(..., help="Folder of images, video file or single image.")) -> None:
    """Print a shot's frame count, size and frame rate."""
    shot = read_shot(source)
    typer.echo(f"{source}: {shot.num_frames} frames, {shot.width}x{shot.height}, {shot.fps:g} fps")


@app.command("convert")
def convert(
    source: Path = typer.Argument(..., help="Folder of images, video file or single image."),
    target: Path = typer.Argument(..., help="Output: .mp4/.mov/.mkv video, or a folder for PNG frames."),
    fps: float = typer.Option(None, help="Frame rate of the output (default: the input's, 24 for images)."),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace an existing video, or the frames of a folder that holds files (its other files are kept).",
    ),
) -> None:
    """Convert a shot between a video and a folder of PNG frames (never half-written; nothing else deleted)."""
    if fps is not None and fps <= 0:
        raise typer.BadParameter("must be positive", param_hint="--fps")
    check_output(target, overwrite=overwrite)  # before reading: a refused output costs nothing
    shot = read_shot(source, fps=fps)
    write_frames(target, shot.frames, shot.fps, shot.names, overwrite=overwrite)
    typer.echo(f"wrote {shot.num_frames} frames to {target}")
