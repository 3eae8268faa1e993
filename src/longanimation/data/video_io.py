"""Reading and writing shots: image folders, videos and single images.

A shot is a stack of frames with a frame rate and per-frame names:

* **read** from a folder of images (png, jpg, jpeg, webp, bmp, tif; natural
  sort order, so ``2.png`` comes before ``10.png``), from a video (mp4, mov,
  webm, mkv, avi, gif; decoded with PyAV) or from a single image;
* **write** to a folder of PNG frames or to an H.264 / yuv420p video at the
  shot's frame rate.

Every image mode Pillow opens is read as 8-bit: 16-bit gray (``I;16``,
``I;16B``, ``I``) and 16-bit color are scaled (65535 -> 255), not clipped;
palette, CMYK, YCbCr, LAB and HSV images are converted to RGB; 1-bit images
become black and white; anything transparent (RGBA, LA, PA, a palette or gray
image with a transparent color) is composited over white unless "RGBA" is asked for.

Writers never leave a half-written output and never delete a file they did not
write: a new or empty output folder appears complete or not at all (see
:mod:`longanimation.atomic`); an output folder that holds files is refused
unless ``overwrite`` is set, and then only the frame files written replace
files of the same name. Every problem with an input (missing path, empty
folder, corrupt or non-image file, mixed frame sizes, two frames with the same
name) or with an output (not writable, disk full) raises
:class:`~longanimation.errors.UserError` with one line.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
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
# Frames x264 looks ahead for its rate control and frame types (its default is 40; 10 is its
# "veryfast" preset's). The encoder holds about that many frames at their full size before it
# hands out the first packet (13 MB each at 4096x2160), which bounds what writing a video of any
# length costs (see VideoWriter). Kept below the shortest shots, so that a 10-frame video already
# fills the window and a longer one costs no more.
ENCODER_LOOKAHEAD = 4
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
    image = _eight_bit(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if mode == "RGBA":
        return np.asarray(image.convert("RGBA"))
    if has_alpha:
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return np.asarray(image.convert(mode))


# Modes Pillow converts to "RGB", "RGBA" and "L" directly and correctly.
_EIGHT_BIT_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA"})


def _eight_bit(image: Image.Image) -> Image.Image:
    """``image`` in one of :data:`_EIGHT_BIT_MODES`, its values scaled to 0..255.

    Pillow's own conversion clips integer gray (``I;16*``, ``I``) at 255, so a
    16-bit image would come out nearly white: it is scaled here instead
    (``I``, 32-bit in Pillow, holds 16-bit gray from PNG, PGM and TIFF files,
    so it is read on the 16-bit scale too, values outside 0..65535 clipped).
    Float gray (``F``) within 0..1 is scaled by 255, otherwise read as 0..255.
    A transparent gray level (``transparency`` of a 16-bit gray PNG) becomes alpha.
    """
    mode = image.mode
    if mode == "I" or mode.startswith("I;16"):
        values = np.asarray(image).astype(np.float64)
        gray = Image.fromarray(np.rint(np.clip(values, 0, 65535) / 257.0).astype(np.uint8), "L")
        transparent = image.info.get("transparency")
        if isinstance(transparent, int):
            alpha = np.where(values == transparent, np.uint8(0), np.uint8(255))
            return Image.merge("LA", (gray, Image.fromarray(alpha, "L")))
        return gray
    if mode == "F":
        values = np.nan_to_num(np.asarray(image).astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        scale = 255.0 if values.size and values.min() >= 0.0 and values.max() <= 1.0 else 1.0
        return Image.fromarray(np.rint(np.clip(values * scale, 0, 255)).astype(np.uint8), "L")
    if mode in ("La", "RGBa"):  # premultiplied alpha
        return image.convert(mode.upper())
    if mode not in _EIGHT_BIT_MODES:  # CMYK, YCbCr, LAB, HSV, RGBX, ...
        return image.convert("RGB")
    return image


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def read_shot(path: str | os.PathLike, *, mode: str = "RGB", fps: float | None = None) -> Shot:
    """Read a whole shot into memory from a folder of images, a video file or a single image.

    ``fps`` overrides the frame rate (image folders and single images otherwise
    get :data:`DEFAULT_FPS`; videos keep their own). Long shots at large frame
    sizes are better read one frame at a time with :func:`open_shot`.
    """
    source = open_shot(path, mode=mode, fps=fps)
    if source.files is not None:
        return Shot(_stack_same_size(source, [file.name for file in source.files], source.path), source.fps, source.names)
    decoded = list(source)  # a video's packet count need not match its decoded frames
    return Shot(_stack_same_size(decoded, index_names(len(decoded)), source.path), source.fps, index_names(len(decoded)))


@dataclass
class ShotSource:
    """A shot read one frame at a time: names, size and frame rate up front, frames on each iteration.

    What a long shot at a large frame size needs instead of :func:`read_shot`
    (which holds every frame): iterating again reads the input again.
    """

    path: Path
    mode: str
    fps: float
    names: list[str]
    files: list[Path] | None  # image files of a folder (or the one image); None for a video

    @property
    def num_frames(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.files is not None:
            for file in self.files:
                yield read_image(file, self.mode)
            return
        yield from _decode(self.path, self.mode)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """Shape of the first frame (H, W[, C])."""
        return next(iter(self)).shape


def open_shot(path: str | os.PathLike, *, mode: str = "RGB", fps: float | None = None) -> ShotSource:
    """A folder of images, a video or one image as a :class:`ShotSource`; errors as :func:`read_shot` gives them."""
    _check_mode(mode)
    path = Path(path)
    if not path.exists():
        raise UserError(f"input {path} does not exist")
    if path.is_dir():
        files = list_image_files(path)
        if not files:
            raise UserError(f"input folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        _refuse_shared_names(files, path)
        return ShotSource(path, mode, fps or DEFAULT_FPS, [file.stem for file in files], files)
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        count, video_fps = _probe_video(path)
        return ShotSource(path, mode, fps or video_fps, index_names(count), None)
    if suffix in IMAGE_SUFFIXES:
        read_image(path, mode)  # fail now on an unreadable image
        return ShotSource(path, mode, fps or DEFAULT_FPS, [path.stem], [path])
    raise UserError(
        f"input {path} is neither a folder, a video ({', '.join(sorted(VIDEO_SUFFIXES))}) "
        f"nor an image ({', '.join(sorted(IMAGE_SUFFIXES))})"
    )


def _probe_video(path: Path) -> tuple[int, float]:
    """Frame count (by demuxing, no decoding) and frame rate of a video."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"cannot read video {path}: it has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            count = sum(1 for packet in container.demux(stream) if packet.size)
    except av.FFmpegError as error:
        raise UserError(f"cannot read video {path}: {error.strerror or error}") from None
    if not count:
        raise UserError(f"cannot read video {path}: it holds no frames")
    return count, float(rate) if rate else DEFAULT_FPS


def _decode(path: Path, mode: str) -> Iterator[np.ndarray]:
    """Frames of a video, decoded one by one."""
    pix_fmt = {"RGB": "rgb24", "RGBA": "rgba", "L": "gray"}[mode]
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(container.streams.video[0]):
                yield frame.to_ndarray(format=pix_fmt)
    except av.FFmpegError as error:
        raise UserError(f"cannot read video {path}: {error.strerror or error}") from None


def _refuse_shared_names(files: Sequence[Path], folder: Path) -> None:
    """Two images whose names differ only in suffix (or case) would be one output frame: refuse them."""
    seen: dict[str, Path] = {}
    for file in files:
        other = seen.setdefault(file.stem.casefold(), file)
        if other is not file:
            raise UserError(
                f"input folder {folder} holds two images for frame {file.stem}: {other.name} and {file.name}; "
                "keep one of them"
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


def write_png_folder(
    directory: str | os.PathLike,
    frames: np.ndarray | Sequence[np.ndarray],
    names: Sequence[str] | None = None,
    *,
    overwrite: bool = True,
) -> Path:
    """Write frames as ``NAME.png`` into ``directory``; files it does not write are never touched.

    A new (or empty) folder is written atomically: it appears complete or not
    at all. A folder that holds files is refused when ``overwrite`` is False;
    otherwise the frames are written into a hidden staging folder inside it
    and then moved in, replacing only the files of the same names. A write
    that fails (disk full, permissions) raises :class:`UserError` naming the
    folder; the frames are moved in only once all of them are written, so a
    failed write leaves the folder as it was.
    """
    directory = Path(directory)
    names = list(names) if names is not None else index_names(len(frames))
    if len(names) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(names)} names")
    if len({name.casefold() for name in names}) != len(names):
        raise ValueError("frame names must be unique (ignoring case)")
    occupied = _check_folder(directory, overwrite=overwrite)
    try:
        if occupied:
            _merge_pngs(directory, frames, names)
        else:
            with atomic_dir(directory) as tmp:
                _save_pngs(tmp, frames, names)
    except OSError as error:
        raise UserError(f"cannot write frames to {directory}: {_reason(error)}") from None
    return directory


def check_output(path: str | os.PathLike, *, overwrite: bool) -> bool:
    """Refuse an output that is there already, unless ``overwrite``; True if ``path`` is a folder holding files.

    A video path (by suffix) must not be a folder, nor an existing file
    without ``overwrite``; any other path is a frame folder, refused when it
    holds files (hidden ones too) and ``overwrite`` is False.
    """
    path = Path(path)
    if is_video_path(path):
        if path.is_dir():
            raise UserError(f"output {path} is a folder, not a video file")
        if path.exists() and not overwrite:
            raise UserError(f"output {path} exists: choose another path, or pass --overwrite to replace it")
        return False
    return _check_folder(path, overwrite=overwrite)


def _check_folder(path: Path, *, overwrite: bool) -> bool:
    if path.exists() and not path.is_dir():
        raise UserError(f"output {path} exists and is not a folder")
    try:
        occupied = path.is_dir() and any(path.iterdir())
    except OSError as error:
        raise UserError(f"cannot look into output folder {path}: {_reason(error)}") from None
    if occupied and not overwrite:
        raise UserError(
            f"output folder {path} is not empty: choose another folder, or pass --overwrite to replace "
            "its frames (other files are kept)"
        )
    return occupied


def _save_pngs(folder: Path, frames: Iterable[np.ndarray], names: Sequence[str]) -> None:
    for name, frame in zip(names, frames, strict=True):
        Image.fromarray(np.ascontiguousarray(frame)).save(folder / f"{name}.png")


def _merge_pngs(directory: Path, frames: Iterable[np.ndarray], names: Sequence[str]) -> None:
    """Write every frame into a staging folder inside ``directory``, then move them in by name."""
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UserError(f"output folder {directory} is not writable")
    blocked = next((directory / f"{name}.png" for name in names if (directory / f"{name}.png").is_dir()), None)
    if blocked is not None:
        raise UserError(f"cannot write frame {blocked}: a folder of that name is in the way")
    staging = Path(tempfile.mkdtemp(prefix=".longanimation-", suffix=".tmp", dir=directory))
    try:
        _save_pngs(staging, frames, names)
        for name in names:
            os.replace(staging / f"{name}.png", directory / f"{name}.png")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _reason(error: OSError) -> str:
    """The system's words for an OSError (``No space left on device``), without the repeated path."""
    return error.strerror or str(error) or type(error).__name__


class VideoWriter:
    """Streaming H.264 (yuv420p) writer; the file appears under its name only when closed cleanly.

    yuv420p needs even width and height: odd sizes are padded by repeating the
    last row or column (PNG outputs keep the exact size).

    The encoder keeps at most :data:`ENCODER_LOOKAHEAD` + 1 frames before it
    hands out their packets (``frames_in_encoder``): x264's default lookahead
    of 40 frames held 41 frames, about 1.4 GB at 4096x2160, so the peak memory
    of a run that ends by writing its video grew with the shot's length up to
    there.

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
        self.packets_written = 0

    def __enter__(self) -> VideoWriter:
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_file(self.path))
        try:
            self._container = av.open(str(tmp), mode="w", format=self._format)
        except BaseException as error:  # the temporary file must not outlive a writer that never opened
            self._stack.__exit__(type(error), error, error.__traceback__)
            raise
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
            self._stream.options = {"crf": str(self.crf), "rc-lookahead": str(ENCODER_LOOKAHEAD)}
        elif (frame.shape[1], frame.shape[0]) != (self._stream.width, self._stream.height):
            raise ValueError("all frames of a video must have the same size")
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
        packets = self._stream.encode(video_frame)
        self._container.mux(packets)
        self.frames_written += 1
        self.packets_written += len(packets)

    @property
    def frames_in_encoder(self) -> int:
        """Frames written whose packets the encoder still holds (one packet a frame)."""
        return self.frames_written - self.packets_written

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


def write_frames(
    path: str | os.PathLike,
    shot_frames: np.ndarray,
    fps: float,
    names: Sequence[str] | None = None,
    *,
    overwrite: bool = True,
) -> Path:
    """Write to a video if ``path`` has a video suffix, else to a PNG folder (:func:`write_png_folder`).

    With ``overwrite`` False an existing video file or a folder holding files
    is refused. Failures to write (disk full, permissions) raise
    :class:`UserError` naming ``path``.
    """
    path = Path(path)
    if not is_video_path(path):
        return write_png_folder(path, shot_frames, names, overwrite=overwrite)
    check_output(path, overwrite=overwrite)
    try:
        return write_video(path, shot_frames, fps)
    except OSError as error:
        raise UserError(f"cannot write video {path}: {_reason(error)}") from None
    except av.FFmpegError as error:
        raise UserError(f"cannot write video {path}: {error.strerror or error}") from None
