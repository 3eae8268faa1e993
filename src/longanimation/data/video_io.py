"""Reading and writing shots: image folders, videos and single images.

A shot is a stack of frames with a frame rate and per-frame names:

* **read** from a folder of images (png, jpg, jpeg, webp, bmp, tif; natural
  sort order, so ``2.png`` comes before ``10.png``), from a video (mp4, mov,
  webm, mkv, avi, gif; decoded with PyAV) or from a single image;
* **write** to a folder of PNG frames or to an H.264 / yuv420p video at the
  shot's frame rate.

Every writer is atomic (see :mod:`longanimation.atomic`), and every problem
with an input (missing path, empty folder, corrupt or non-image file, mixed
frame sizes) raises :class:`~longanimation.errors.UserError` with one line.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..atomic import atomic_dir, atomic_file
from ..errors import UserError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif"})
# Containers we write, with the PyAV format name; all carry H.264 in yuv420p.
WRITABLE_VIDEO_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
DEFAULT_FPS = 24.0
MODES = ("RGB", "RGBA", "L")


@dataclass
class Shot:
    """Frames of one shot.

    ``frames`` is uint8 with shape (T, H, W, 3) for mode "RGB", (T, H, W, 4) for
    "RGBA" and (T, H, W) for "L". ``names`` holds one stem per frame (the source
    file stem for image folders, a zero-padded index otherwise) so that PNG
    output keeps the input's names and order.
    """

    frames: np.ndarray
    fps: float
    names: list[str]

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers numerically (``frame2`` < ``frame10``)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def is_video_path(path: str | os.PathLike) -> bool:
    """True if ``path`` names a video file by its suffix."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def index_names(count: int) -> list[str]:
    """Zero-padded frame names ``00000, 00001, ...`` (at least 5 digits)."""
    width = max(5, len(str(max(count - 1, 0))))
    return [f"{index:0{width}d}" for index in range(count)]


def list_image_files(folder: Path) -> list[Path]:
    """Image files of ``folder`` in natural order (hidden files are ignored)."""
    files = [
        entry
        for entry in folder.iterdir()
        if entry.is_file() and not entry.name.startswith(".") and entry.suffix.lower() in IMAGE_SUFFIXES
    ]
    return sorted(files, key=lambda entry: natural_key(entry.name))


def read_image(path: str | os.PathLike, mode: str = "RGB") -> np.ndarray:
    """Read one image as uint8 in ``mode``; transparent pixels become white in "RGB" and "L"."""
    _check_mode(mode)
    path = Path(path)
    if not path.exists():
        raise UserError(f"input {path} does not exist")
    try:
        with Image.open(path) as image:
            image.load()
            return _convert(image, mode)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        reason = "not a valid image file" if isinstance(error, UnidentifiedImageError) else str(error)
        raise UserError(f"cannot read image {path}: {reason}") from None


def _convert(image: Image.Image, mode: str) -> np.ndarray:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if mode == "RGBA":
        return np.asarray(image.convert("RGBA"))
    if has_alpha:
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return np.asarray(image.convert(mode))


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def read_shot(path: str | os.PathLike, *, mode: str = "RGB", fps: float | None = None) -> Shot:
    """Read a shot from a folder of images, a video file or a single image.

    ``fps`` overrides the frame rate (image folders and single images otherwise
    get :data:`DEFAULT_FPS`; videos keep their own).
    """
    _check_mode(mode)
    path = Path(path)
    if not path.exists():
        raise UserError(f"input {path} does not exist")
    if path.is_dir():
        files = list_image_files(path)
        if not files:
            raise UserError(f"input folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        frames = _stack_same_size((read_image(file, mode) for file in files), [f.name for f in files], path)
        return Shot(frames, fps or DEFAULT_FPS, [file.stem for file in files])
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        frames, video_fps = read_video(path, mode)
        return Shot(frames, fps or video_fps, index_names(len(frames)))
    if suffix in IMAGE_SUFFIXES:
        return Shot(read_image(path, mode)[None], fps or DEFAULT_FPS, [path.stem])
    raise UserError(
        f"input {path} is neither a folder, a video ({', '.join(sorted(VIDEO_SUFFIXES))}) "
        f"nor an image ({', '.join(sorted(IMAGE_SUFFIXES))})"
    )


def _stack_same_size(frames: Iterable[np.ndarray], labels: Sequence[str], source: Path) -> np.ndarray:
    stacked = []
    for label, frame in zip(labels, frames, strict=True):
        if stacked and frame.shape != stacked[0].shape:
            first = stacked[0].shape
            raise UserError(
                f"frames of {source} differ in size: {labels[0]} is {first[1]}x{first[0]}, "
                f"{label} is {frame.shape[1]}x{frame.shape[0]}"
            )
        stacked.append(frame)
    return np.stack(stacked)


def read_video(path: str | os.PathLike, mode: str = "RGB") -> tuple[np.ndarray, float]:
    """Decode every frame of a video with PyAV; returns (frames, fps)."""
    _check_mode(mode)
    path = Path(path)
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"cannot read video {path}: it has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else DEFAULT_FPS
            pix_fmt = {"RGB": "rgb24", "RGBA": "rgba", "L": "gray"}[mode]
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format=pix_fmt))
    except av.FFmpegError as error:
        raise UserError(f"cannot read video {path}: {error.strerror or error}") from None
    if not frames:
        raise UserError(f"cannot read video {path}: it holds no frames")
    return _stack_same_size(frames, index_names(len(frames)), path), fps


def write_png_folder(
    directory: str | os.PathLike, frames: np.ndarray | Sequence[np.ndarray], names: Sequence[str] | None = None
) -> Path:
    """Write frames as ``NAME.png`` into ``directory`` (replaced whole, atomically)."""
    directory = Path(directory)
    names = list(names) if names is not None else index_names(len(frames))
    if len(names) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(names)} names")
    with atomic_dir(directory) as tmp:
        for name, frame in zip(names, frames, strict=True):
            Image.fromarray(np.ascontiguousarray(frame)).save(tmp / f"{name}.png")
    return directory


class VideoWriter:
    """Streaming H.264 (yuv420p) writer; the file appears under its name only when closed cleanly.

    yuv420p needs even width and height: odd sizes are padded by repeating the
    last row or column (PNG outputs keep the exact size).

    >>> with VideoWriter("out.mp4", fps=24) as writer:  # doctest: +SKIP
    ...     writer.write(frame)
    """

    def __init__(self, path: str | os.PathLike, fps: float, crf: int = 18):
        self.path = Path(path)
        container_format = WRITABLE_VIDEO_FORMATS.get(self.path.suffix.lower())
        if container_format is None:
            raise UserError(
                f"cannot write video {self.path}: use one of {', '.join(sorted(WRITABLE_VIDEO_FORMATS))}"
            )
        if not fps > 0:
            raise UserError(f"frame rate must be positive, got {fps}")
        self.fps = fps
        self.crf = crf
        self._format = container_format
        self._atomic = atomic_file(self.path)
        self._container = None
        self._stream = None
        self.frames_written = 0

    def __enter__(self) -> VideoWriter:
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_file(self.path))
        self._container = av.open(str(tmp), mode="w", format=self._format)
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one frame: uint8 (H, W, 3) RGB or (H, W) gray."""
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=2)
        frame = _pad_to_even(np.ascontiguousarray(frame[..., :3]))
        if self._stream is None:
            self._stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
            self._stream.width, self._stream.height = frame.shape[1], frame.shape[0]
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": str(self.crf)}
        elif (frame.shape[1], frame.shape[0]) != (self._stream.width, self._stream.height):
            raise ValueError("all frames of a video must have the same size")
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
        self._container.mux(self._stream.encode(video_frame))
        self.frames_written += 1

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                if self._stream is None:
                    raise UserError(f"cannot write video {self.path}: no frames")
                self._container.mux(self._stream.encode())
        except BaseException as error:
            self._container.close()
            self._stack.__exit__(type(error), error, error.__traceback__)
            raise
        self._container.close()
        return bool(self._stack.__exit__(exc_type, exc, tb))


def _pad_to_even(frame: np.ndarray) -> np.ndarray:
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if pad_h or pad_w:
        frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frame


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Write frames to an H.264 / yuv420p video at ``fps`` (atomically)."""
    with VideoWriter(path, fps) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)


def write_frames(path: str | os.PathLike, shot_frames: np.ndarray, fps: float, names: Sequence[str] | None = None) -> Path:
    """Write to a video if ``path`` has a video suffix, else to a PNG folder."""
    if is_video_path(path):
        return write_video(path, shot_frames, fps)
    return write_png_folder(path, shot_frames, names)
