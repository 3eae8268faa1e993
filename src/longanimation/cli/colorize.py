"""``longanimation colorize``: color a long line-art shot from colored keyframes."""

from __future__ import annotations

import re
import time
from pathlib import Path

import typer

from ..errors import UserError
from .app import app

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "assets" / "tiny-model"
KEYFRAME_SPEC = re.compile(r"^(?P<path>.+?)(?:@(?P<index>-?\d+))?$")


def parse_keyframe(spec: str) -> tuple[Path, int]:
    """``key.png`` -> (key.png, 0); ``key.png@300`` -> (key.png, 300)."""
    match = KEYFRAME_SPEC.match(spec)
    index = int(match.group("index")) if match.group("index") is not None else 0
    return Path(match.group("path")), index


@app.command("colorize")
def colorize(
    lineart: Path = typer.Argument(..., metavar="INPUT", help="Line art: folder of images, video or image."),
    output: Path = typer.Argument(
        ..., metavar="OUT", help="Output folder (frames/, colorized.mp4, segments.json, color_layer/)."
    ),
    keyframe: list[str] = typer.Option(
        ..., "--keyframe", "-k", help="Colored keyframe, PATH or PATH@INDEX (default index 0); repeat for several."
    ),
    prompt: str = typer.Option("", help="Text prompt describing the shot."),
    model: Path = typer.Option(DEFAULT_MODEL, help="Model folder (default: the shipped tiny model)."),
    extract_sketches: bool = typer.Option(
        False, "--extract-sketches", help="INPUT holds colored frames: extract the line art first."
    ),
    binarize: bool = typer.Option(False, "--binarize", help="Binarize gray line art with the paper's rule (>200 = paper)."),
    ground_truth: Path = typer.Option(None, help="Colored frames of the shot: adds side_by_side.mp4 (line art | ours | truth)."),
    segment_frames: int = typer.Option(None, help="Frames per segment F (4k+1; default from the model)."),
    overlap: int = typer.Option(None, help="Overlap C (a multiple of 4): segments share C+1 frames."),
    steps: int = typer.Option(None, help="Denoising steps per segment."),
    guidance_scale: float = typer.Option(None, help="Classifier-free guidance scale (1 = off)."),
    fusion_start: int = typer.Option(None, help="Color Consistency Fusion in the last N steps (t_st)."),
    no_fusion: bool = typer.Option(False, "--no-fusion", help="Turn Color Consistency Fusion off."),
    memory: str = typer.Option("both", help="Memory for DGLM: none, local, global or both."),
    paradigm: str = typer.Option("memory", help="memory (the paper), local-fusion (LVCD-style) or autoregressive."),
    flat: bool = typer.Option(False, "--flat", help="Flat colors: one color per area the line art closes (median)."),
    palette_tolerance: float = typer.Option(
        None, help="With --flat: areas within this RGB distance (0-441) of a keyframe color take it exactly."
    ),
    track_regions: bool = typer.Option(
        False,
        "--track-regions",
        help="With --flat: areas followed from a keyframe keep its colors exactly, their lines its line colors.",
    ),
    color_layer: bool = typer.Option(
        False, "--color-layer", help="Also write color_layer/: the frames without lines (for compositing)."
    ),
    keep_held: bool = typer.Option(False, "--no-collapse-held", help="Color held drawings (twos/threes) frame by frame."),
    seed: int = typer.Option(0, help="Random seed (same seed, same output)."),
    fps: float = typer.Option(None, help="Frame rate of the videos (default: the input's)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in OUT."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
) -> None:
    """Color every frame of INPUT from the keyframes (LongAnimation, segment by segment with memory)."""
    import numpy as np

    from ..data.lineart import binarize_frames, frames_have_light_lines, image_to_lineart, is_binary
    from ..data.lineart_extraction import extract_lineart
    from ..data.video_io import is_video_path, read_image, read_shot

    started = time.perf_counter()
    shot = read_shot(lineart)
    if extract_sketches:
        sketches = np.stack([extract_lineart(frame) for frame in shot.frames])
    elif binarize or is_video_path(lineart):
        sketches = binarize_frames(shot.frames)
    else:
        bad = next((i for i, frame in enumerate(shot.frames) if not is_binary(frame)), None)
        if bad is not None:
            raise UserError(
                f"line art frame {shot.names[bad]} is not binary (gray or colored pixels): pass --binarize, "
                "--extract-sketches for colored frames, or run `longanimation binarize` first"
            )
        light_lines = frames_have_light_lines(shot.frames)  # white on black, as `binarize` detects it
        sketches = np.stack([image_to_lineart(frame, light_lines=light_lines) for frame in shot.frames])

    keyframes = {}
    for spec in keyframe:
        path, index = parse_keyframe(spec)
        if index in keyframes:
            raise UserError(f"two keyframes for frame {index}")
        keyframes[index] = read_image(path)
    truth = read_shot(ground_truth).frames if ground_truth is not None else None
    if truth is not None and truth.shape != (*sketches.shape, 3):
        raise UserError(f"ground truth {ground_truth} has shape {truth.shape[:3]}, line art {sketches.shape}")

    from ..pipeline.long_animation import ColorizeOptions

    options = ColorizeOptions(
        segment_frames=segment_frames,
        overlap=overlap,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        fusion_start=0 if no_fusion else fusion_start,
        memory=memory,
        paradigm=paradigm,
        collapse_held_drawings=not keep_held,
        seed=seed,
        flat_colors=flat,
        palette_tolerance=palette_tolerance,
        track_regions=track_regions,
    )
    _run(sketches, keyframes, prompt, options, model, output, shot, truth, fps, resume, quiet, started, color_layer)


def _run(
    sketches, keyframes, prompt, options, model_path, output, shot, truth, fps, resume, quiet, started, color_layer
) -> None:
    from ..models.longanimation_model import LongAnimationModel
    from ..pipeline.long_animation import LongAnimationPipeline, plan_summary
    from ..pipeline.output import FrameFolderSink, finish, write_plan

    if not model_path.exists():
        raise UserError(f"model folder {model_path} does not exist (pass --model PATH)")
    model = LongAnimationModel.from_pretrained(model_path)
    pipeline = LongAnimationPipeline(model)
    resolved = options.resolved(model)
    pipeline.check_inputs(sketches, keyframes)
    if output.exists() and not output.is_dir():
        raise UserError(f"output {output} exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not resume:
        raise UserError(f"output folder {output} is not empty (use --resume to continue a run, or another folder)")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create output folder {output}: {error.strerror or error}") from None
    groups, jobs = pipeline.plan(sketches, list(keyframes), resolved)
    write_plan(output, plan_summary(groups, jobs))
    sink = FrameFolderSink(output, shot.names)
    with _progress(quiet) as report:
        pipeline(sketches, keyframes, prompt, options, sink=sink, state_dir=output, resume=resume, progress=report)
    written = finish(
        sink,
        fps or shot.fps,
        lineart=sketches if truth is not None else None,
        ground_truth=truth,
        color_layer_of=sketches if color_layer else None,
    )
    if not quiet:
        seconds = time.perf_counter() - started
        typer.echo(
            f"colored {len(sketches)} frames in {len(jobs)} segments ({seconds:.1f} s, "
            f"{len(sketches) / seconds:.2f} frames/s): {output / 'frames'}, " + ", ".join(str(p) for p in written)
        )


class _progress:
    """Rich progress over segments x steps with ETA (nothing when quiet)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    def __enter__(self):
        if self.quiet:
            return None
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TimeRemainingColumn(), transient=False
        )
        self.bar.__enter__()
        self.task = None
        return self.report

    def report(self, job: int, jobs: int, step: int, steps: int) -> None:
        if self.task is None:
            self.task = self.bar.add_task("", total=jobs * steps, completed=job * steps)
        self.bar.update(self.task, completed=job * steps + step, description=f"segment {job + 1}/{jobs} step {step}/{steps}")

    def __exit__(self, *exc) -> None:
        if not self.quiet:
            self.bar.__exit__(*exc)
