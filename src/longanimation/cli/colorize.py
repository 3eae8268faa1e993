"""``longanimation colorize``: color a long line-art shot from colored keyframes."""

from __future__ import annotations

import math
import re
import shutil
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


def load_lineart(path: Path, *, extract_sketches: bool = False, binarize: bool = False):
    """Line art of a shot as bool masks spooled to disk, and the shot it was read from (names, fps).

    Frames are read one at a time (twice when the polarity must be decided on
    the whole shot first), so no step holds the whole shot in memory.
    Colored frames go through the line-art extractor (``extract_sketches``),
    gray drawings and videos through the paper's binarization; otherwise the
    input must already be binary, in either polarity.
    """
    from ..data.frame_store import FrameStore
    from ..data.lineart import binarize as binarize_frame
    from ..data.lineart import image_to_lineart, is_binary, stream_has_light_lines
    from ..data.gap_closing import DEFAULT_MAX_GAP
    from ..data.lineart_extraction import sketch_from_color
    from ..data.video_io import is_video_path, open_shot

    shot = open_shot(path)
    if extract_sketches:
        frames = (sketch_from_color(frame, max_gap=DEFAULT_MAX_GAP) for frame in shot)  # as extract-sketches does
    elif binarize or is_video_path(path):
        invert = stream_has_light_lines(shot, shot.num_frames)
        frames = (binarize_frame(frame, invert=invert) for frame in shot)
    else:
        for name, frame in zip(shot.names, shot):
            if not is_binary(frame):
                raise UserError(
                    f"line art frame {name} is not binary (gray or colored pixels): pass --binarize, "
                    "--extract-sketches for colored frames, or run `longanimation binarize` first"
                )
        light_lines = stream_has_light_lines(shot, shot.num_frames)  # white on black, as `binarize` detects it
        frames = (image_to_lineart(frame, light_lines=light_lines) for frame in shot)
    return FrameStore.spool(frames, shot.names, str(path)), shot


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
    fusion_steps: int = typer.Option(None, help="Color Consistency Fusion in the last N steps (t_st)."),
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
    correspondence: str = typer.Option(
        "flow",
        help="How frames take colors from the keyframe and the frames colored before them, at the input's size: "
        "flow (line-art correspondence; the model colors only new content) or none (the model's frames, as in the paper).",
    ),
    color_layer: bool = typer.Option(
        False, "--color-layer", help="Also write color_layer/: the frames without lines (for compositing)."
    ),
    keep_held: bool = typer.Option(False, "--no-collapse-held", help="Color held drawings (twos/threes) frame by frame."),
    seed: int = typer.Option(0, help="Random seed (same seed, same output)."),
    fps: float = typer.Option(None, help="Frame rate of the videos (default: the input's)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in OUT."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
    device: str = typer.Option(None, help="Where the model runs: cpu, cuda, cuda:1, ... (default: cuda if there is a GPU)."),
    dtype: str = typer.Option(
        None, help="Weights' dtype: fp32, bf16 or fp16 (GPU only); the sampler stays float32 (default: bf16 on a GPU, fp32 on the CPU)."
    ),
    vae_dtype: str = typer.Option(None, help="The VAE's own dtype (default: --dtype's), e.g. fp32 on a CPU (slow bf16 Conv3d)."),
    offload: str = typer.Option(
        "none",
        help="none: denoiser and VAE stay on the device, the text encoder and memory model come only while they run; "
        "model: each part on the device only while it runs; sequential: weights streamed layer by layer (least memory, slowest). "
        "See `longanimation info --estimate HxW`.",
    ),
    vae_tiling: bool = typer.Option(
        False, "--vae-tiling", help="Encode and decode in overlapping tiles (about 10x less VAE memory; tile seams blended)."
    ),
    vae_slicing: bool = typer.Option(
        False, "--vae-slicing", help="VAE batches one video at a time (segments are batches of one: no change here)."
    ),
    memory_resident: bool = typer.Option(
        False, "--memory-resident", help="With --offload none: keep the memory model on the device between segments."
    ),
) -> None:
    """Color every frame of INPUT from the keyframes (LongAnimation, segment by segment with memory)."""
    from ..data.video_io import open_shot, read_image
    from ..pipeline.placement import PlacementOptions

    started = time.perf_counter()
    check_fps(fps)  # the other numbers are checked by ColorizeOptions.resolved, before any frame
    placement = PlacementOptions(device, dtype, offload, vae_tiling, vae_slicing, memory_resident, vae_dtype).resolved()
    sketches, shot = load_lineart(lineart, extract_sketches=extract_sketches, binarize=binarize)

    keyframes = {}
    for spec in keyframe:
        path, index = parse_keyframe(spec)
        if index in keyframes:
            raise UserError(f"two keyframes for frame {index}")
        keyframes[index] = read_image(path)
    truth = open_shot(ground_truth) if ground_truth is not None else None  # read while the videos are written
    if truth is not None and (truth.num_frames, *truth.frame_shape) != (*sketches.shape, 3):
        raise UserError(
            f"ground truth {ground_truth} has shape {(truth.num_frames, *truth.frame_shape[:2])}, line art {sketches.shape}"
        )

    from ..pipeline.long_animation import ColorizeOptions

    options = ColorizeOptions(
        segment_frames=segment_frames,
        overlap=overlap,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        fusion_steps=0 if no_fusion else fusion_steps,
        memory=memory,
        paradigm=paradigm,
        collapse_held_drawings=not keep_held,
        seed=seed,
        flat_colors=flat,
        palette_tolerance=palette_tolerance,
        track_regions=track_regions,
        correspondence=correspondence,
    )
    _run(
        sketches, keyframes, prompt, options, model, output, shot, truth, fps, resume, quiet, started, color_layer,
        placement=placement,
    )


def _run(
    sketches, keyframes, prompt, options, model_path, output, shot, truth, fps, resume, quiet, started, color_layer,
    progress=None, placement=None,
) -> None:
    # progress: a (job, jobs, step, steps) callback that replaces the terminal bar (the web UI's, which can also stop the run).
    # placement: PlacementOptions (device, dtype, offload, VAE tiling); None: the model as loaded, on the CPU.
    from ..models.longanimation_model import LongAnimationModel
    from ..pipeline.long_animation import LongAnimationPipeline, plan_summary
    from ..pipeline.output import FrameFolderSink, WriteError, finish, write_plan
    from ..pipeline.resume import run_fingerprint
    from .app import Interrupted

    check_fps(fps)
    if not model_path.exists():
        raise UserError(f"model folder {model_path} does not exist (pass --model PATH)")
    model = LongAnimationModel.from_pretrained(model_path, dtype=placement.torch_dtype if placement else None)
    pipeline = LongAnimationPipeline(model, placement)
    resolved = options.resolved(model)
    _, checked = pipeline.check_inputs(sketches, keyframes)
    groups, jobs = pipeline.plan(sketches, list(keyframes), resolved)
    # The run folder is always resumable or absent: its first state is there before anything else,
    # and every later write (frames, plan, state, videos) is atomic.
    key = run_fingerprint(sketches, checked, prompt, resolved, model.preset, pipeline.weights_digest)
    _open_run_folder(output, key, resume)
    again = f"{output} can be continued by the same command with --resume"
    try:
        write_plan(output, plan_summary(groups, jobs))
        sink = FrameFolderSink(output, shot.names)
        with _progress(quiet or progress is not None) as report:
            pipeline(sketches, keyframes, prompt, options, sink=sink, state_dir=output, resume=True, progress=progress or report)
        written = finish(
            sink,
            fps or shot.fps,
            lineart=sketches if truth is not None else None,
            ground_truth=truth,
            color_layer_of=sketches if color_layer else None,
        )
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: {again}") from None
    except WriteError as error:
        raise UserError(f"{error} ({again} once that is fixed)") from None
    except OSError as error:  # disk full, permission lost, ... anywhere else in the run
        where = error.filename or output
        raise UserError(f"cannot write {where}: {error.strerror or error} ({again} once that is fixed)") from None
    if not quiet:
        seconds = time.perf_counter() - started
        typer.echo(
            f"colored {len(sketches)} frames in {len(jobs)} segments ({seconds:.1f} s, "
            f"{len(sketches) / seconds:.2f} frames/s): {output / 'frames'}, " + ", ".join(str(p) for p in written)
        )


def check_fps(fps: float | None) -> None:
    """``--fps``: None (the input's) or a finite rate > 0, checked before any work."""
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise UserError(f"--fps must be a finite number > 0, got {fps}")


def _open_run_folder(output: Path, key: str, resume: bool) -> None:
    """Check ``output`` for a run with fingerprint ``key`` before writing anything into it.

    A new run gets its first state (next job 0) before anything else, so the
    folder is resumable from then on; if even that fails, nothing is left.
    ``resume`` needs a folder holding the state of a run with the same key.
    """
    from ..pipeline.output import VIDEO_NAME, holds_output, remove_leftovers, remove_state
    from ..pipeline.resume import RunState, check_state, has_state

    if output.exists() and not output.is_dir():
        raise UserError(f"output {output} exists and is not a folder")
    if resume:
        if not output.is_dir():
            raise UserError(f"nothing to resume: {output} does not exist (start without --resume)")
        if not has_state(output) and (output / VIDEO_NAME).is_file():
            raise UserError(f"nothing to resume in {output}: its run is complete")
        check_state(output, key)
        remove_leftovers(output)
        return
    if output.is_dir() and holds_output(output):
        raise UserError(f"output folder {output} is not empty (use --resume to continue a run, or another folder)")
    created = not output.exists()
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create output folder {output}: {error.strerror or error}") from None
    try:
        remove_leftovers(output)
        RunState().save(output, key)
    except BaseException as error:
        if created:
            shutil.rmtree(output, ignore_errors=True)
        else:
            remove_state(output)
            remove_leftovers(output)
        if isinstance(error, OSError):
            raise UserError(f"cannot write to output folder {output}: {error.strerror or error}") from None
        raise


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
