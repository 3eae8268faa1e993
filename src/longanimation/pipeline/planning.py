"""Planning a long shot: runs from keyframes, segments within a run, held drawings.

Everything here is index bookkeeping, independent of the models:

* :func:`plan_runs` splits a shot around its keyframes (anywhere in the shot)
  into *runs*: frame orders that start at a keyframe and walk forward, or
  backward in reversed time, up to the midpoint towards the next keyframe or
  to the end of the shot. Each run is colored from its own (nearest) keyframe.
* :func:`plan_segments` cuts a run into model segments of F frames that share
  ``overlap + 1`` frames with the previous segment (fig. 2(b,c), sec. 3.3).
  Consecutive starts differ by a multiple of the VAE's temporal compression so
  that overlapping *latent* frames cover the same pixel frames, which is what
  Color Consistency Fusion (eq. 6) blends. The last segment is shifted back
  and, if needed, padded by at most ``temporal_compression - 1`` frames, so
  every frame is colored exactly once and nothing is dropped (the official
  release drops the tail). Shots shorter than F get one shorter segment.
* :func:`held_drawing_groups` finds consecutive identical line-art frames
  (animation on twos or threes) so that each drawing is colored once;
  :func:`drawing_members` and :func:`keyframes_by_drawing` index the shot
  by drawing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Run:
    """Frames colored from one keyframe, in generation order (``frames[0]`` is the keyframe)."""

    keyframe: int
    frames: tuple[int, ...]

    @property
    def direction(self) -> int:
        """+1 forward in time, -1 backward (time reversed)."""
        return -1 if len(self.frames) > 1 and self.frames[1] < self.frames[0] else 1


@dataclass(frozen=True)
class Segment:
    """Positions ``[start, start + length)`` of a run, of which ``[start, end)`` are real frames.

    ``shared_frames`` counts the frames shared with the previous segment (0
    for the first; ``C + 1``, or more for a tail segment shifted back onto
    the latent grid); ``length - (end - start)`` frames at the end are padding.
    """

    index: int
    start: int
    length: int
    end: int
    shared_frames: int

    @property
    def padding(self) -> int:
        return self.start + self.length - self.end


def plan_runs(num_frames: int, keyframes: Sequence[int]) -> list[Run]:
    """Split ``range(num_frames)`` into runs, each starting at its nearest keyframe.

    A keyframe ``k`` colors forward up to the midpoint towards the next
    keyframe (or the end) and backward down to the midpoint towards the
    previous one (or frame 0). Every frame belongs to exactly one run, except
    keyframes themselves, which open both of their runs.
    """
    if num_frames < 1:
        raise ValueError("a shot needs at least one frame")
    keys = sorted(set(int(k) for k in keyframes))
    if not keys:
        raise ValueError("at least one keyframe is needed")
    if keys[0] < 0 or keys[-1] >= num_frames:
        raise ValueError(f"keyframe indices must lie in [0, {num_frames - 1}], got {keys}")
    runs: list[Run] = []
    for position, key in enumerate(keys):
        low = 0 if position == 0 else (keys[position - 1] + key) // 2 + 1
        high = num_frames - 1 if position == len(keys) - 1 else (key + keys[position + 1]) // 2
        runs.append(Run(key, tuple(range(key, high + 1))))
        if low < key:
            runs.append(Run(key, tuple(range(key, low - 1, -1))))
    return runs


def valid_segment_length(frames: int, temporal_compression: int) -> int:
    """Smallest length >= ``frames`` of the form ``temporal_compression * n + 1``."""
    return frames + (-(frames - 1)) % temporal_compression


def plan_segments(
    num_frames: int, segment_frames: int, overlap: int, temporal_compression: int = 4
) -> list[Segment]:
    """Cut ``num_frames`` positions into segments of ``segment_frames`` sharing ``overlap + 1`` frames.

    ``segment_frames`` must be ``temporal_compression * n + 1`` and ``overlap``
    a multiple of ``temporal_compression`` (so starts stay aligned with latent
    frames); the stride is ``segment_frames - 1 - overlap``.
    """
    if num_frames < 1:
        raise ValueError("nothing to plan: zero frames")
    if (segment_frames - 1) % temporal_compression:
        raise ValueError(f"segment_frames must be {temporal_compression}*n+1, got {segment_frames}")
    if overlap % temporal_compression or not 0 <= overlap < segment_frames - 1:
        raise ValueError(f"overlap must be a multiple of {temporal_compression} below {segment_frames - 1}")
    if num_frames <= segment_frames:
        length = valid_segment_length(num_frames, temporal_compression)
        return [Segment(0, 0, length, num_frames, 0)]
    stride = segment_frames - 1 - overlap
    segments = [Segment(0, 0, segment_frames, segment_frames, 0)]
    while segments[-1].end < num_frames:
        previous = segments[-1]
        start = previous.start + stride
        if start + segment_frames > num_frames:
            # Shift the tail segment back, staying on the latent grid of the previous one.
            start -= (start + segment_frames - num_frames) // temporal_compression * temporal_compression
        end = min(start + segment_frames, num_frames)
        segments.append(Segment(len(segments), start, segment_frames, end, previous.end - start))
    return segments


def held_drawing_groups(sketches: Sequence[np.ndarray] | np.ndarray) -> list[int]:
    """For each frame, the index of the first frame of its run of identical drawings.

    ``[0, 0, 2, 2, 2, 5]`` means frames 0-1 are one drawing (on twos), 2-4
    another (on threes) and 5 a third.
    """
    groups: list[int] = []
    for index, sketch in enumerate(sketches):
        if index and np.array_equal(sketch, sketches[index - 1]):
            groups.append(groups[-1])
        else:
            groups.append(index)
    return groups


def drawing_members(groups: Sequence[int]) -> dict[int, list[int]]:
    """The frames of each drawing: ``[0, 0, 2]`` -> ``{0: [0, 1], 2: [2]}``."""
    members: dict[int, list[int]] = {}
    for frame, group in enumerate(groups):
        members.setdefault(group, []).append(frame)
    return members


def keyframes_by_drawing(groups: Sequence[int], keyframes: Mapping[int, object]) -> dict[int, object]:
    """Keyframes keyed by their drawing (its first frame); the earliest keyframe of a drawing wins."""
    return {groups[index]: keyframe for index, keyframe in sorted(keyframes.items(), reverse=True)}
