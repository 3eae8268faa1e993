"""One colorization run started from the web UI, without any Gradio in it.

A browser hands over loose uploaded files; the CLI wants one input path (a
video, a folder of images, an image) and ``PATH@INDEX`` keyframes. This module
stages the uploads into that shape and then calls the CLI's own reading
(:func:`longanimation.cli.colorize.load_lineart`) and run
(:func:`longanimation.cli.colorize._run`), so the UI accepts, refuses and
colors exactly what the CLI does, with the same one-line errors. Only what a
browser needs on top is added here: the line art | colored video without a
ground truth, and zips of the frame folders for download.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

# Colors of the output: the CLI's default, --flat, and --flat --track-regions.
COLOR_MODES = ("model", "flat", "tracked")
# What the uploaded line art is: binary drawings as is, gray ones (--binarize), colored frames (--extract-sketches).
LINEART_KINDS = ("binary", "gray", "colored")

Progress = Callable[[int, int, int, int], None]


class Cancelled(Exception):
    """Raised from the progress callback to stop a run between two denoising steps."""


@dataclass
class RunResult:
    """Files of a finished run, for the page's outputs."""

    video: Path
    side_by_side: Path | None
    frames_zip: Path
    color_layer_zip: Path
    summary: str


def stage_lineart(files: Sequence[str | Path], folder: Path) -> Path:
    """The single input path the CLI reads, made from the uploaded line art.

    One video is read as is; one zip is unpacked and its image folder used;
    images (one or several) are gathered into a folder under their own names,
    since the output frames keep the input names and natural order.
    """
    paths = [Path(file) for file in files or ()]
    if not paths:
        raise UserError("upload the line art: a video, a zip of an image folder, or images")
    from ..data.video_io import IMAGE_SUFFIXES, is_video_path

    if len(paths) == 1 and is_video_path(paths[0]):
        return paths[0]
    if len(paths) == 1 and paths[0].suffix.lower() == ".zip":
        return _unpack(paths[0], folder / "lineart")
    target = folder / "lineart"
    target.mkdir(parents=True)
    for path in paths:
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(
                f"line art upload {path.name} is not an image: upload one video, one zip, or images "
                f"({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        destination = target / path.name
        if destination.exists():
            raise UserError(f"two line art uploads are named {path.name}")
        shutil.copyfile(path, destination)
    return target


def _unpack(archive: Path, target: Path) -> Path:
    """Unpack a zip and find its folder of images (the zip's root, or the one folder that holds them)."""
    from ..data.video_io import list_image_files

    try:
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(target)  # member names are sanitized: nothing lands outside target
    except (zipfile.BadZipFile, OSError) as error:
        raise UserError(f"cannot read zip {archive.name}: {error}") from None
    folder = target
    while not list_image_files(folder):
        # Archivers wrap the folder in itself (shot/...) and macOS adds __MACOSX/: look one level in.
        inner = [entry for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith((".", "__"))]
        if len(inner) != 1:
            raise UserError(f"zip {archive.name} holds no folder of images")
        folder = inner[0]
    return folder


def parse_indices(text: str | None, count: int) -> list[int]:
    """Frame indices of the ``count`` keyframes, in upload order, from text like ``0, 150``.

    Left empty, a single keyframe is frame 0, as ``--keyframe PATH`` without ``@INDEX``.
    """
    tokens = [token for token in re.split(r"[\s,;]+", text or "") if token]
    if not tokens and count == 1:
        return [0]
    indices = []
    for token in tokens:
        try:
            indices.append(int(token))
        except ValueError:
            raise UserError(f"keyframe index {token!r} is not a frame number") from None
    if len(indices) != count:
        raise UserError(f"{count} keyframe(s) but {len(indices)} index(es): give one frame index per keyframe, e.g. 0, 150")
    return indices


def read_keyframes(files: Sequence[str | Path], indices_text: str | None) -> dict[int, object]:
    """Uploaded keyframe images as ``{frame index: RGB image}``."""
    paths = [Path(file) for file in files or ()]
    if not paths:
        raise UserError("at least one colored keyframe is needed")
    from ..data.video_io import read_image

    keyframes = {}
    for path, index in zip(paths, parse_indices(indices_text, len(paths)), strict=True):
        if index in keyframes:
            raise UserError(f"two keyframes for frame {index}")
        keyframes[index] = read_image(path)
    return keyframes


def run(
    lineart_files: Sequence[str | Path],
    keyframe_files: Sequence[str | Path],
    indices: str | None,
    workdir: Path,
    *,
    model: str | Path,
    prompt: str = "",
    colors: str = "model",
    lineart_kind: str = "binary",
    steps: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> RunResult:
    """Color the uploads into ``workdir/out`` through the CLI's own code; raises UserError on bad input.

    ``steps`` None (or 0) takes the model's default, as the CLI without ``--steps``.
    """
    from ..cli.colorize import _run, load_lineart
    from ..pipeline.long_animation import ColorizeOptions
    from ..pipeline.output import COLOR_LAYER_DIR, FRAMES_DIR, PLAN_NAME, VIDEO_NAME

    if colors not in COLOR_MODES:
        raise UserError(f"colors must be one of {', '.join(COLOR_MODES)}, got {colors!r}")
    if lineart_kind not in LINEART_KINDS:
        raise UserError(f"line art kind must be one of {', '.join(LINEART_KINDS)}, got {lineart_kind!r}")
    if steps is not None and steps < 0:
        raise UserError(f"steps must be 0 (the model's default) or more, got {steps}")
    model = Path(str(model).strip()).expanduser()
    started = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    source = stage_lineart(lineart_files, workdir)
    sketches, shot = load_lineart(source, extract_sketches=lineart_kind == "colored", binarize=lineart_kind == "gray")
    try:
        keyframes = read_keyframes(keyframe_files, indices)
        options = ColorizeOptions(
            num_inference_steps=steps or None,
            seed=int(seed),
            flat_colors=colors != "model",
            track_regions=colors == "tracked",
        )
        output = workdir / "out"
        _run(
            sketches=sketches, keyframes=keyframes, prompt=prompt or "", options=options, model_path=model,
            output=output, shot=shot, truth=None, fps=None, resume=False, quiet=True, started=started,
            color_layer=True, progress=progress,
        )
        side_by_side = _side_by_side(output, sketches, shot)
    finally:
        close = getattr(sketches, "close", None)  # the spooled line art holds a temporary file
        if close is not None:
            close()
    segments = len(json.loads((output / PLAN_NAME).read_text())["segments"])
    seconds = time.perf_counter() - started
    return RunResult(
        video=output / VIDEO_NAME,
        side_by_side=side_by_side,
        frames_zip=_zip(output, FRAMES_DIR),
        color_layer_zip=_zip(output, COLOR_LAYER_DIR),
        summary=f"colored {shot.num_frames} frames in {segments} segment{'s' if segments != 1 else ''} ({seconds:.1f} s)",
    )


def _side_by_side(output: Path, sketches, shot) -> Path | None:
    """``line art | colored`` video, the CLI's side-by-side minus the ground truth a browser user rarely has.

    Returns None when the frames cannot be paired (never expected; the page then shows only the colored video).
    """
    import numpy as np

    from ..data.lineart import lineart_to_image
    from ..data.video_io import VideoWriter
    from ..pipeline.output import FrameFolderSink

    path = output / "side_by_side.mp4"
    frames = FrameFolderSink(output, shot.names).frames()
    try:
        with VideoWriter(path, shot.fps) as writer:
            for sketch, colored in zip(sketches, frames, strict=True):
                gray = lineart_to_image(np.asarray(sketch, bool))
                writer.write(np.concatenate([np.repeat(gray[..., None], 3, axis=2), colored], axis=1))
    except ValueError:
        return None
    return path


def _zip(output: Path, folder: str) -> Path:
    """``output/folder.zip`` holding ``folder/NAME.png``, so the download unpacks to a named folder."""
    return Path(shutil.make_archive(str(output / folder), "zip", root_dir=output, base_dir=folder))
