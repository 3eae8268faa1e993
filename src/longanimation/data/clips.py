"""Training clips: what every training stage of the paper consumes.

A :class:`TrainingClip` holds, for one sample (sec. 3.2 and 4.1 of the paper):

* ``target``: a segment of F colored frames, the frames to be generated;
* ``sketches``: its binary line art (True = line), the control signal;
* ``reference``: one colored frame drawn at random from *earlier* in the shot,
  up to hundreds of frames before the segment (sec. 3.2.1: the reference is
  not tied to the segment's first frame), and its line art
  ``reference_sketch`` (SketchDiT's reference slot);
* ``history``: the frames before the segment, from which the Dynamic
  Global-Local Memory is built (sec. 3.2.2);
* ``prompt``: the text description;
* ``object_mask``: for toon worlds, which target pixels belong to a character
  or prop (their colors can only come from the reference), else None.

Two sources yield them: :class:`ToonClipDataset` renders synthetic toon worlds
on the fly (random access, deterministic per index), and
:class:`FolderClipDataset` reads a folder tree of real clips (mp4/mov/webm/gif
files or PNG/JPG folders, with optional captions in CSV or parquet). Clips
shorter than ``min_clip_frames`` (paper: 91) are skipped and counted.
With ``crop_height``/``crop_width`` set, every part of a clip is cut to the
same random window (training on crops of full-size frames: the convolutional
VAE and the RoPE transformer see full-resolution detail at a fraction of the
cost per step).
"""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from ..errors import UserError
from .video_io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, list_image_files, natural_key, read_shot


@dataclass(frozen=True)
class ClipConfig:
    """How clips are cut from a shot.

    ``history_frames`` frames before the target are returned (subsampled with
    ``history_stride``); the reference index is drawn uniformly from
    ``[start - max_reference_distance, start]`` (clamped at 0), so it lies up to
    hundreds of frames back when the shot allows.
    """

    segment_frames: int = 17
    history_frames: int = 64
    history_stride: int = 1
    max_reference_distance: int = 400
    min_history_frames: int = 0
    min_clip_frames: int = 91
    height: int = 128
    width: int = 128
    crop_height: int = 0  # 0: no crop
    crop_width: int = 0

    def __post_init__(self):
        if self.segment_frames < 1 or self.history_frames < 0 or self.history_stride < 1:
            raise ValueError("segment_frames >= 1, history_frames >= 0 and history_stride >= 1 are required")
        if not (0 <= self.crop_height <= self.height and 0 <= self.crop_width <= self.width):
            raise ValueError("crop_height and crop_width must lie between 0 (no crop) and the frame size")


@dataclass
class TrainingClip:
    """One training sample; arrays are uint8 RGB (frames, H, W, 3) unless noted."""

    target: np.ndarray
    sketches: np.ndarray  # (F, H, W) bool, True = line
    reference: np.ndarray  # (H, W, 3)
    reference_sketch: np.ndarray  # (H, W) bool
    history: np.ndarray  # (K, H, W, 3), K may be 0
    prompt: str
    target_start: int
    reference_index: int
    history_indices: list[int] = field(default_factory=list)
    source: str = ""
    object_mask: np.ndarray | None = None  # (F, H, W) bool, True on characters and props (toon worlds only)


def sample_clip_indices(
    num_frames: int, config: ClipConfig, rng: np.random.Generator
) -> tuple[int, int, list[int]]:
    """Draw (target_start, reference_index, history_indices) for a shot of ``num_frames``.

    The target start is uniform over the starts that leave ``min_history_frames``
    frames before the segment; the reference is uniform over the
    ``max_reference_distance`` frames before (and including) the start; the
    history is the ``history_frames`` frames before the start, every
    ``history_stride``-th, oldest first.
    """
    last_start = num_frames - config.segment_frames
    first_start = min(config.min_history_frames, max(last_start, 0))
    if last_start < 0:
        raise ValueError(f"shot of {num_frames} frames is shorter than a {config.segment_frames}-frame segment")
    start = int(rng.integers(first_start, last_start + 1))
    reference = int(rng.integers(max(0, start - config.max_reference_distance), start + 1))
    span = config.history_frames * config.history_stride
    history = list(range(max(0, start - span), start))[::-1][:: config.history_stride][::-1]
    return start, reference, history


def crop_clip(clip: TrainingClip, config: ClipConfig, rng: np.random.Generator) -> TrainingClip:
    """``clip`` cut to one random ``crop_height x crop_width`` window (unchanged when cropping is off)."""
    height, width = clip.target.shape[1:3]
    crop_height, crop_width = config.crop_height or height, config.crop_width or width
    if (crop_height, crop_width) == (height, width):
        return clip
    top = int(rng.integers(0, height - crop_height + 1))
    left = int(rng.integers(0, width - crop_width + 1))
    window = (slice(top, top + crop_height), slice(left, left + crop_width))
    return replace(
        clip,
        target=clip.target[:, window[0], window[1]],
        sketches=clip.sketches[:, window[0], window[1]],
        reference=clip.reference[window],
        reference_sketch=clip.reference_sketch[window],
        history=clip.history[:, window[0], window[1]],
        object_mask=None if clip.object_mask is None else clip.object_mask[:, window[0], window[1]],
    )


WEIGHTED_OBJECTS = ("all", "memory")  # which objects ``object_mask`` marks (ToonClipDataset)
MEMORY_OBJECT_DRAWS = 16  # clip draws before giving up finding an object only the memory shows


class ToonClipDataset:
    """Clips rendered on the fly from synthetic toon worlds (map-style, deterministic per index).

    Item ``i`` uses world ``world_seeds[i % len(world_seeds)]`` and a random
    generator seeded by ``(sample_seed, i)``, so a given index is always the
    same clip whatever the order of access (resumable training).

    ``object_mask`` marks the pixels of the weighted objects: every character
    and prop (``weighted_objects="all"``), or (``"memory"``) those shown in the
    history but not in the reference, whose colors only the Dynamic
    Global-Local Memory can supply (sec. 3.2.2); then the clip is redrawn (up
    to ``MEMORY_OBJECT_DRAWS`` times) until its target shows one.
    """

    def __init__(
        self,
        world_seeds: Sequence[int],
        config: ClipConfig = ClipConfig(),
        *,
        world_frames: int = 600,
        weighted_objects: str = "all",
        length: int = 10_000,
        sample_seed: int = 0,
        cache_worlds: int = 8,
    ):
        if not world_seeds:
            raise ValueError("at least one world seed is needed")
        if weighted_objects not in WEIGHTED_OBJECTS:
            raise ValueError(f"weighted_objects must be one of {', '.join(WEIGHTED_OBJECTS)}, got {weighted_objects!r}")
        self.world_seeds = list(world_seeds)
        self.config = config
        self.world_frames = world_frames
        self.weighted_objects = weighted_objects
        self.length = length
        self.sample_seed = sample_seed
        self._world = functools.lru_cache(maxsize=cache_worlds)(self._build_world)

    def _build_world(self, seed: int):
        from .toon import ToonConfig, ToonWorld

        config = ToonConfig(seed=seed, frames=self.world_frames, height=self.config.height, width=self.config.width)
        world = ToonWorld(config)
        object_of = np.zeros(world.region_count, dtype=np.int64)  # region id -> its object (0: background)
        for obj in world.objects[1:]:
            object_of[[part.id for part in obj.parts] + [obj.outline.id]] = obj.index
        seen = None  # (frames, objects): which objects show in which frame; renders the whole world, so only when needed
        if self.weighted_objects == "memory":
            visible = world.region_visibility()
            seen = np.stack([visible[:, object_of == obj.index].any(axis=1) for obj in world.objects], axis=1)
        return world, object_of, seen

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> TrainingClip:
        if not 0 <= index < self.length:
            raise IndexError(index)
        seed = self.world_seeds[index % len(self.world_seeds)]
        world, object_of, seen = self._world(seed)
        rng = np.random.default_rng((self.sample_seed, index))
        characters = np.arange(len(world.objects)) > 0  # every character and prop, not the background
        for _ in range(1 if seen is None else MEMORY_OBJECT_DRAWS):
            start, reference_index, history = sample_clip_indices(self.world_frames, self.config, rng)
            if seen is None:
                weighted = characters
                break
            weighted = characters & ~seen[reference_index] & seen[history].any(axis=0)
            if weighted[seen[start : start + self.config.segment_frames].any(axis=0)].any():
                break
        segment = [world.render(t) for t in range(start, start + self.config.segment_frames)]
        reference = world.render(reference_index)
        clip = TrainingClip(
            target=np.stack([frame.color for frame in segment]),
            sketches=np.stack([frame.lineart for frame in segment]),
            reference=reference.color,
            reference_sketch=reference.lineart,
            history=_stack_or_empty([world.render(t).color for t in history], self.config),
            prompt=world.caption,
            target_start=start,
            reference_index=reference_index,
            history_indices=history,
            source=f"toon:{seed}",
            object_mask=weighted[object_of[np.stack([frame.regions for frame in segment])]],
        )
        return crop_clip(clip, self.config, rng)


@dataclass(frozen=True)
class ClipSource:
    """One real clip found on disk: a video file or a folder of frames."""

    path: Path
    num_frames: int
    caption: str


class FolderClipDataset:
    """Clips cut from a folder tree of real animation (map-style, deterministic per index).

    Every video file and every folder that directly holds images is one clip.
    Clips shorter than ``config.min_clip_frames`` are skipped; their number is
    in :attr:`skipped`. Captions come from ``captions`` (CSV or parquet with a
    ``path`` column, relative to ``root`` or a bare name, and a ``caption``
    column), else ``default_prompt``. Frames are resized to cover
    ``config.height x config.width`` and centre-cropped; line art is extracted
    by ``sketch_extractor`` (default: the classical dark-line extractor).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        config: ClipConfig = ClipConfig(),
        *,
        captions: str | os.PathLike | None = None,
        default_prompt: str = "an animation clip",
        sketch_extractor: Callable[[np.ndarray], np.ndarray] | None = None,
        length: int | None = None,
        sample_seed: int = 0,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise UserError(f"clip folder {self.root} does not exist")
        self.config = config
        self.sample_seed = sample_seed
        caption_of = read_captions(captions) if captions is not None else {}
        self.sources: list[ClipSource] = []
        self.skipped = 0
        for path in find_clip_paths(self.root):
            count = count_frames(path)
            if count < max(config.min_clip_frames, config.segment_frames):
                self.skipped += 1
                continue
            relative = path.relative_to(self.root).as_posix()
            caption = caption_of.get(relative) or caption_of.get(path.name) or caption_of.get(path.stem)
            self.sources.append(ClipSource(path, count, caption or default_prompt))
        if not self.sources:
            raise UserError(
                f"no usable clips under {self.root}: {self.skipped} shorter than {config.min_clip_frames} frames"
            )
        self.length = length if length is not None else len(self.sources)
        self._extract = sketch_extractor or _default_sketch_extractor()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> TrainingClip:
        if not 0 <= index < self.length:
            raise IndexError(index)
        source = self.sources[index % len(self.sources)]
        rng = np.random.default_rng((self.sample_seed, index))
        start, reference_index, history = sample_clip_indices(source.num_frames, self.config, rng)
        frames = read_shot(source.path).frames
        frames = resize_cover(frames, self.config.height, self.config.width)
        target = frames[start : start + self.config.segment_frames]
        clip = TrainingClip(
            target=target,
            sketches=np.stack([self._extract(frame) for frame in target]),
            reference=frames[reference_index],
            reference_sketch=self._extract(frames[reference_index]),
            history=_stack_or_empty([frames[t] for t in history], self.config),
            prompt=source.caption,
            target_start=start,
            reference_index=reference_index,
            history_indices=history,
            source=str(source.path),
        )
        return crop_clip(clip, self.config, rng)


def _default_sketch_extractor() -> Callable[[np.ndarray], np.ndarray]:
    from .lineart_extraction import extract_lineart

    return extract_lineart


def _stack_or_empty(frames: list[np.ndarray], config: ClipConfig) -> np.ndarray:
    if frames:
        return np.stack(frames)
    return np.zeros((0, config.height, config.width, 3), np.uint8)


def find_clip_paths(root: Path) -> list[Path]:
    """Video files and image folders under ``root``, in natural order."""
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        here = Path(directory)
        if any(Path(name).suffix.lower() in IMAGE_SUFFIXES for name in files):
            found.append(here)
        found.extend(here / name for name in files if Path(name).suffix.lower() in VIDEO_SUFFIXES)
    return sorted(found, key=lambda path: natural_key(path.as_posix()))


def count_frames(path: Path) -> int:
    """Number of frames of a clip (image count, or decoded frame count of a video)."""
    if path.is_dir():
        return len(list_image_files(path))
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return sum(1 for _ in container.demux(stream) if _.size)
    except (av.FFmpegError, IndexError):
        return 0


def read_captions(path: str | os.PathLike) -> dict[str, str]:
    """Map clip path/name -> caption from a CSV or parquet file with ``path`` and ``caption`` columns."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"caption file {path} does not exist")
    if path.suffix.lower() == ".parquet":
        try:
            import pandas as pd
        except ImportError:
            raise UserError("reading parquet captions needs pandas and pyarrow: pip install pandas pyarrow") from None
        rows = pd.read_parquet(path).to_dict("records")
    else:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    if not rows or not {"path", "caption"} <= set(rows[0]):
        raise UserError(f"caption file {path} needs the columns 'path' and 'caption'")
    return {str(row["path"]): str(row["caption"]) for row in rows}


def resize_cover(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (T, H, W, 3) frames to cover ``height x width`` keeping aspect, then centre-crop."""
    source_height, source_width = frames.shape[1:3]
    if (source_height, source_width) == (height, width):
        return frames
    scale = max(height / source_height, width / source_width)
    new_height, new_width = max(height, round(source_height * scale)), max(width, round(source_width * scale))
    top, left = (new_height - height) // 2, (new_width - width) // 2
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = [cv2.resize(frame, (new_width, new_height), interpolation=interpolation) for frame in frames]
    return np.stack(resized)[:, top : top + height, left : left + width]
