"""Which frames each generation segment produced, and where the seams between segments lie.

Segments are half-open ``[start, end)`` frame ranges. They come from a JSON
file, from a fixed period, or by default from the official plan (F = 81
frames sharing 17 with the previous segment, one run forward from frame 0).
The file is either the ``segments.json`` that ``longanimation colorize``
writes (``{"segments": [{"frames": [first, last], ...}]}``: the inclusive
frames each segment contributes to the output, empty lists skipped), or a
list of ``[start, end)`` pairs or ``{"start": s, "end": e}`` objects, bare or
under a ``"segments"`` key.

The seam between two consecutive segments spans from the last frame before
the second one starts to the first frame after the first one ends: ``(a, b)``
with ``a = min(next.start, this.end) - 1`` and ``b = max(next.start,
this.end)``; for segments that overlap (blended by Color Consistency Fusion)
it therefore brackets the whole overlap.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..pipeline.planning import plan_segments

OFFICIAL_FRAMES = 81
OFFICIAL_OVERLAP = 16


@dataclass(frozen=True)
class Segmentation:
    """Segment ranges of a shot and where they came from (for the report)."""

    ranges: tuple[tuple[int, int], ...]
    source: str
    num_frames: int

    def seams(self) -> list[tuple[int, int]]:
        """``(a, b)`` frame pairs bracketing each seam between consecutive segments (both within the shot)."""
        ordered = sorted(self.ranges)
        pairs = [
            (min(nxt[0], cur[1]) - 1, max(nxt[0], cur[1])) for cur, nxt in zip(ordered[:-1], ordered[1:], strict=True)
        ]
        return [(a, b) for a, b in pairs if 0 <= a < b < self.num_frames]


def read_segments(path: str | os.PathLike, num_frames: int) -> Segmentation:
    """Segments from a JSON file; ranges must lie within the shot's ``num_frames`` frames."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"segments file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"cannot read segments file {path}: {error}") from None
    items = data.get("segments") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise UserError(f"{path} holds no segments: expected a list of [start, end) frame ranges")
    try:
        ranges = [(start, end) for start, end in map(_pair, items) if start is not None]
    except UserError as error:
        raise UserError(f"{path}: {error}") from None
    for start, end in ranges:
        if not 0 <= start < end <= num_frames:
            raise UserError(f"{path}: segment [{start}, {end}) does not fit the shot's {num_frames} frames")
    if not ranges:
        raise UserError(f"{path} holds only empty segments")
    return Segmentation(tuple(ranges), f"file {path}", num_frames)


def _pair(item) -> tuple[int, int] | tuple[None, None]:
    """One file entry as ``(start, end)``; ``(None, None)`` for a pipeline segment that contributes no frame."""
    if isinstance(item, dict) and "frames" in item:  # colorize's plan: inclusive [first, last]
        frames = item["frames"]
        if frames == []:
            return None, None
        pair = (frames[0], frames[1] + 1) if _is_int_pair(frames) else None
    else:
        pair = (item.get("start"), item.get("end")) if isinstance(item, dict) else item
    if not _is_int_pair(pair):
        raise UserError(f"segment {item!r} is not a [start, end) pair of frame numbers")
    return int(pair[0]), int(pair[1])


def _is_int_pair(value) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def fixed_segments(num_frames: int, length: int) -> Segmentation:
    """Consecutive non-overlapping segments of ``length`` frames (the last may be shorter)."""
    if length < 1:
        raise UserError(f"--segment-length must be at least 1, got {length}")
    ranges = tuple((start, min(start + length, num_frames)) for start in range(0, num_frames, length))
    return Segmentation(ranges, f"fixed period of {length} frames (assumed)", num_frames)


def official_segments(num_frames: int) -> Segmentation:
    """The official plan: 81-frame segments sharing 17 frames, generated forward from frame 0."""
    planned = plan_segments(num_frames, OFFICIAL_FRAMES, OFFICIAL_OVERLAP)
    ranges = tuple((segment.start, segment.end) for segment in planned)
    return Segmentation(
        ranges,
        f"official plan: {OFFICIAL_FRAMES}-frame segments overlapping by {OFFICIAL_OVERLAP + 1} (assumed)",
        num_frames,
    )
