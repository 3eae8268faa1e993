"""The output folder of a colorization run, written as segments finish.

Layout of ``OUT/``:

* ``frames/NAME.png``: one colored frame per input frame, same names and order
  as the line art; each file appears atomically when its segment is final;
* ``color_layer/NAME.png``: the frames without their lines, each line pixel
  taking the nearest color (with ``color_layer``; written at the end);
* ``colorized.mp4``: H.264 video of the frames (written at the end);
* ``side_by_side.mp4``: line art | ours | ground truth (when a ground truth is given);
* ``segments.json``: the plan (segments in input frame indices), for seam metrics;
* ``.longanimation-state/``: what ``--resume`` needs; removed when the run completes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import atomic_file
from ..data.lineart import lineart_to_image
from ..data.video_io import VideoWriter, read_image
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
        with atomic_file(self.path(index)) as tmp:
            Image.fromarray(frame).save(tmp, format="PNG")

    def missing(self) -> list[int]:
        """Indices whose frame has not been written yet."""
        return [index for index in range(len(self.names)) if not self.path(index).is_file()]

    def frames(self):
        """Read the written frames back in order (for the videos)."""
        for index in range(len(self.names)):
            yield read_image(self.path(index))


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
    shutil.rmtree(sink.output / STATE_DIR, ignore_errors=True)
    return written
