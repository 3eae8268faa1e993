"""``longanimation extract-sketches`` and ``longanimation binarize``: make binary line art.

``extract-sketches`` turns colored frames into the binary sketches the model
is conditioned on; ``binarize`` cleans up line art somebody drew (gray,
anti-aliased, transparent or white-on-black) with the paper's rule. Both write
black lines on white, as PNG frames with the input's names or as a video, and
write nothing when the input is unusable.

Both can close the small gaps between strokes
(:mod:`longanimation.data.gap_closing`), so that every area a paint bucket
(the colorizer's ``--flat``) fills is closed off: ``extract-sketches`` does by
default, since its edges break at junctions; ``binarize`` with
``--close-gaps``, for drawings whose strokes do not quite meet.

Neither replaces what is already at the output without ``--overwrite``, and
with it a PNG folder only gets its frames written (files of other names stay).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import typer
from PIL import Image
from rich.console import Console
from rich.progress import track

from ..atomic import atomic_file
from ..data.gap_closing import DEFAULT_MAX_GAP, GapClosingConfig, close_gaps
from ..data.lineart import PAPER_THRESHOLD, binarize_frames, frames_have_light_lines, lineart_to_image
from ..data.lineart_extraction import method_config, sketch_from_color
from ..data.video_io import IMAGE_SUFFIXES, WRITABLE_VIDEO_FORMATS, Shot, is_video_path, read_shot, write_frames
from ..errors import UserError
from .app import app

if TYPE_CHECKING:
    from ..models.lineart_generator import LineArtGenerator

INPUT_HELP = "Folder of images, video file or single image."
OUTPUT_HELP = (
    "Output: a folder for PNG frames (same names and order), a .mp4/.mov/.mkv video, or one .png for one frame."
)
QUIET_HELP = "Print nothing on success (no progress, no summary)."
OVERWRITE_HELP = (
    "Write into an existing output: replace the video or image, or the same-named PNGs of a non-empty "
    "folder (its other files are kept)."
)
MAX_GAP_HELP = "Widest gap between strokes (pixels) that gap closing bridges."


@app.command("extract-sketches")
def extract_sketches(
    source: Path = typer.Argument(..., metavar="INPUT", help=INPUT_HELP),
    target: Path = typer.Argument(..., metavar="OUT", help=OUTPUT_HELP),
    method: str = typer.Option(
        "regions",
        help="regions: boundaries between colored areas plus dark strokes (real frames: shaded, dithered, "
        "textured, dark backgrounds; no weights); dark-lines: only the dark outlines of flat cel frames; "
        "xdog: difference of Gaussians; learned: informative-drawings network (--weights).",
    ),
    weights: Path = typer.Option(
        None, help="Line-art generator weights as a local .safetensors file (needed by --method learned)."
    ),
    threshold: float = typer.Option(
        None,
        help="regions: minimum color step (Delta E) between two areas (default 14); dark-lines: minimum "
        "darkening in L* units (default 8); xdog: epsilon (default 0.1); learned: lines where the network "
        "output is below it (default 0.78).",
    ),
    gaps: bool = typer.Option(
        True,
        "--close-gaps/--no-close-gaps",
        help="Bridge small gaps between strokes so that every area is closed (trapped-ball gap closing).",
    ),
    max_gap: int = typer.Option(
        DEFAULT_MAX_GAP, min=1, max=64, help=MAX_GAP_HELP + " Pixel art blown up k times: k times this."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Extract binary sketches (black lines on white) from colored frames."""
    config = method_config(method, threshold)
    if method == "learned" and weights is None:
        raise UserError(
            "--method learned needs --weights FILE.safetensors (the line-art generator's weights as a local "
            "safetensors file; nothing is downloaded)"
        )
    if method != "learned" and weights is not None:
        raise UserError(f"--weights is only used by --method learned, not {method}")
    shot = read_shot(source, mode="RGB")
    _check_target(source, target, shot, overwrite)
    generator = _load_generator(weights) if method == "learned" else None
    frames = _progress(shot.frames, shot.num_frames, "extracting sketches", quiet)
    gap = max_gap if gaps else None
    sketches = [sketch_from_color(rgb, method, config=config, generator=generator, max_gap=gap) for rgb in frames]
    _write(target, lineart_to_image(np.stack(sketches)), shot)
    if not quiet:
        closing = f", gaps up to {max_gap} px closed" if gaps else ""
        typer.echo(f"wrote {_frames(shot)} of sketches ({method}{closing}) to {target}")


@app.command("binarize")
def binarize_command(
    source: Path = typer.Argument(..., metavar="INPUT", help=INPUT_HELP),
    target: Path = typer.Argument(..., metavar="OUT", help=OUTPUT_HELP),
    threshold: int = typer.Option(
        PAPER_THRESHOLD, min=0, max=255, help="Gray level above which a pixel is background (paper: 200)."
    ),
    invert: bool = typer.Option(
        None,
        "--invert/--no-invert",
        help="Light lines on a dark ground (--invert) or dark on light (--no-invert); default: detected.",
    ),
    gaps: bool = typer.Option(
        False,
        "--close-gaps/--no-close-gaps",
        help="Bridge small gaps where strokes do not quite meet (scanned drawings), so every area is closed.",
    ),
    max_gap: int = typer.Option(DEFAULT_MAX_GAP, min=1, max=64, help=MAX_GAP_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Binarize drawn line art (gray, anti-aliased, transparent or white-on-black) into black on white."""
    gap_config = GapClosingConfig(max_gap)
    shot = read_shot(source, mode="RGBA")
    _check_target(source, target, shot, overwrite)
    if invert is None:
        invert = frames_have_light_lines(shot.frames)
    masks = binarize_frames(shot.frames, threshold, invert=invert)
    if gaps:
        masks = np.stack([close_gaps(mask, gap_config) for mask in masks])
    _write(target, lineart_to_image(masks), shot)
    if not quiet:
        polarity = "light lines on dark" if invert else "dark lines on light"
        closing = f", gaps up to {max_gap} px closed" if gaps else ""
        typer.echo(f"wrote {_frames(shot)} of binary line art ({polarity}, threshold {threshold}{closing}) to {target}")


def _check_target(source: Path, target: Path, shot: Shot, overwrite: bool) -> None:
    """Refuse an output that would overwrite the input or existing files, or cannot hold the shot, before any work."""
    if target.resolve() == source.resolve():
        raise UserError(f"output {target} is the input; choose another output path")
    if not overwrite:
        if target.is_dir() and any(target.iterdir()):
            raise UserError(f"output folder {target} is not empty; pass --overwrite to write the frames into it")
        if target.exists() and not target.is_dir():
            raise UserError(f"output {target} exists; pass --overwrite to replace it")
    suffix = target.suffix.lower()
    if is_video_path(target) and suffix not in WRITABLE_VIDEO_FORMATS:
        raise UserError(f"cannot write video {target}: use one of {', '.join(sorted(WRITABLE_VIDEO_FORMATS))}")
    if suffix in IMAGE_SUFFIXES:
        if suffix != ".png":
            raise UserError(f"output {target}: line art is written as .png, not {target.suffix}")
        if shot.num_frames != 1:
            raise UserError(
                f"output {target} names one image but the input has {shot.num_frames} frames; "
                "give a folder or a video path"
            )


def _write(target: Path, images: np.ndarray, shot: Shot) -> None:
    """Write uint8 (T, H, W) images to one PNG, a video, or a PNG folder (each file atomically).

    A new folder is written whole and renamed into place; an existing one
    only gets its frames, each PNG written under a temporary name and renamed:
    :func:`~longanimation.data.video_io.write_frames` would replace the whole
    folder, deleting whatever else the user keeps in it.
    """
    if target.suffix.lower() == ".png":
        _write_png(target, images[0])
    elif target.is_dir() and not is_video_path(target):
        for name, image in zip(shot.names, images, strict=True):
            _write_png(target / f"{name}.png", image)
    else:
        write_frames(target, images, shot.fps, shot.names)


def _write_png(path: Path, image: np.ndarray) -> None:
    with atomic_file(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def _frames(shot: Shot) -> str:
    return f"{shot.num_frames} frame" + ("" if shot.num_frames == 1 else "s")


def _load_generator(weights: Path) -> LineArtGenerator:
    from ..models.lineart_generator import LineArtGenerator  # imports torch: only when needed

    return LineArtGenerator.from_safetensors_file(weights)


def _progress(frames: Iterable[np.ndarray], total: int, description: str, quiet: bool) -> Iterator[np.ndarray]:
    """Iterate ``frames``, showing a progress bar on stderr when it is a terminal (never with --quiet)."""
    console = Console(stderr=True)
    hidden = quiet or total < 2 or not console.is_terminal
    return iter(track(frames, description=description, total=total, console=console, disable=hidden))
