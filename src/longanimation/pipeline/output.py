"""The output folder of a colorization run, written as segments finish.

Layout of ``OUT/``:

* ``frames/NAME.png``: one colored frame per input frame, same names and order
  as the line art; each file appears atomically when its segment is final;
* ``color_layer/NAME.png``: the frames without their lines, each line pixel
  taking the nearest color (with ``color_layer``; written at the end);
* ``colorized.mp4``: H.264 video of the frames (written at the end);
* ``side_by_side.mp4``: line art | ours | ground truth (when a ground truth is given);
* ``segments.json``: the plan (segments in input frame indices), for seam metrics;
* ``.longanimation-state/``: what ``--resume`` needs; saved before the first frame
  is written, removed when the run completes.

The folder is always resumable or absent: a kill, an interrupt or an OS error
(disk full, permission lost) at any instant leaves the state of the last
finished segment (or the first state), from which ``--resume`` re-generates
the rest byte-identical. Temporary files of an interrupted atomic write
(``.NAME.*.tmp``) are left-overs, removed when the run resumes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import atomic_file
from ..data.lineart import lineart_to_image
from ..data.video_io import VideoWriter, read_image
from ..errors import UserError
from .flat_colors import remove_lines
from .resume import STATE_DIR

FRAMES_DIR = "frames"
COLOR_LAYER_DIR = "color_layer"
VIDEO_NAME = "colorized.mp4"
SIDE_BY_SIDE_NAME = "side_by_side.mp4"
PLAN_NAME = "segments.json"


class FrameFolderSink:
    """Writes each finished frame as ``OUT/FOLDER/NAME.png`` (atomically; FOLDER defaults to ``frames``)."""

    def __init__(self, output: Path, names: Sequence[str], folder: str = FRAMES_DIR):
        self.output = output
        self.folder = output / folder
        self.names = list(names)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, index: int) -> Path:
        return self.folder / f"{self.names[index]}.png"

    def write(self, index: int, frame: np.ndarray) -> None:
        path = self.path(index)
        try:
            with atomic_file(path) as tmp:
                Image.fromarray(frame).save(tmp, format="PNG")
        except OSError as error:
            raise write_error(path, error) from None

    def missing(self) -> list[int]:
        """Indices whose frame has not been written yet."""
        return [index for index in range(len(self.names)) if not self.path(index).is_file()]

    def frames(self):
        """Read the written frames back in order (for the videos)."""
        for index in range(len(self.names)):
            yield read_image(self.path(index))


class WriteError(UserError):
    """An OS error (disk full, permission lost, ...) while writing one output file."""


def write_error(path: Path, error: OSError) -> WriteError:
    """One line for an OS error while writing ``path``."""
    return WriteError(f"cannot write {path}: {error.strerror or error}")


def _leftover(name: str) -> bool:
    """A temporary of an interrupted atomic write (``atomic_file``/``atomic_dir``), or a replaced state."""
    return name.startswith(".") and name.endswith((".tmp", ".old"))


def holds_output(output: Path) -> bool:
    """Whether folder ``output`` holds anything but left-overs of interrupted atomic writes."""
    return any(not _leftover(entry.name) for entry in output.iterdir())


def remove_leftovers(output: Path) -> None:
    """Delete the temporaries interrupted atomic writes left in ``output`` and its frame folders."""
    for folder in (output, output / FRAMES_DIR, output / COLOR_LAYER_DIR, output / STATE_DIR):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if _leftover(entry.name):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


def remove_state(output: Path) -> None:
    """Drop the resume state: renamed away first (one step), then deleted."""
    state = output / STATE_DIR
    if not state.exists():
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{STATE_DIR}.", suffix=".old", dir=output))
    os.replace(state, trash / "state")
    shutil.rmtree(trash, ignore_errors=True)


def write_plan(output: Path, segments: list[dict]) -> None:
    """``segments.json``: [{"run", "keyframe", "direction", "frames": [first, last]}, ...] in input indices."""
    with atomic_file(output / PLAN_NAME) as tmp:
        tmp.write_text(json.dumps({"segments": segments}, indent=1) + "\n")


def finish(
    sink: FrameFolderSink,
    fps: float,
    *,
    lineart: np.ndarray | None = None,
    ground_truth: np.ndarray | None = None,
    color_layer_of: np.ndarray | None = None,
) -> list[Path]:
    """Write the videos (and the color layer of line art ``color_layer_of``) and drop the resume state.

    Returns the files and folders written.
    """
    written = []
    if color_layer_of is not None:
        written.append(sink.output / COLOR_LAYER_DIR)
        layer = FrameFolderSink(sink.output, sink.names, folder=COLOR_LAYER_DIR)
        for index, (frame, lines) in enumerate(zip(sink.frames(), color_layer_of, strict=True)):
            layer.write(index, remove_lines(frame, lines))
    try:
        written.append(sink.output / VIDEO_NAME)
        with VideoWriter(written[-1], fps) as writer:
            for frame in sink.frames():
                writer.write(frame)
        if lineart is not None and ground_truth is not None:
            written.append(sink.output / SIDE_BY_SIDE_NAME)
            with VideoWriter(written[-1], fps) as writer:
                for sketch, ours, truth in zip(lineart, sink.frames(), ground_truth, strict=True):
                    sketch_rgb = np.repeat(lineart_to_image(sketch)[..., None], 3, axis=2)
                    writer.write(np.concatenate([sketch_rgb, ours, truth], axis=1))
    except OSError as error:  # disk full while encoding: the state stays, a resume writes the videos again
        raise write_error(written[-1], error) from None
    remove_state(sink.output)
    return written
