"""Held drawings: stretches of the shot animated on ones, twos or threes.

On twos (threes) each drawing, characters and camera alike, is shown for two
(three) frames, so those frames are byte-identical. The shot is cut into
stretches of 1 to 4 seconds, each with its own hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeldStretch:
    """Frames ``start`` to ``end`` (inclusive) are animated with each drawing shown ``hold`` frames."""

    start: int
    end: int
    hold: int


@dataclass(frozen=True)
class Timing:
    """Which drawing every frame shows.

    ``drawing_frame[t]`` is the frame whose scene state frame ``t`` shows (the
    first frame of its drawing); ``drawing_index[t]`` counts drawings from 0.
    ``stretches`` lists every stretch, including those on ones.
    """

    drawing_frame: np.ndarray
    drawing_index: np.ndarray
    stretches: tuple[HeldStretch, ...]

    @property
    def held_stretches(self) -> tuple[HeldStretch, ...]:
        """The stretches on twos or threes."""
        return tuple(stretch for stretch in self.stretches if stretch.hold > 1)


def plan_timing(frames: int, rng: np.random.Generator) -> Timing:
    """Cut the shot into stretches; at least one is on twos and one on threes when there are enough frames."""
    lengths: list[int] = []
    while sum(lengths) < frames:
        lengths.append(int(rng.integers(24, 97)))
    lengths[-1] -= sum(lengths) - frames
    holds = [int(h) for h in rng.choice([1, 2, 3], size=len(lengths), p=[0.5, 0.3, 0.2])]
    order = [int(i) for i in rng.permutation(len(lengths))]
    for wanted in (2, 3):
        if wanted in holds or frames < 4:
            continue
        spare = [i for i in order if holds[i] == 1] or [i for i in order if holds.count(holds[i]) > 1]
        if spare:
            holds[spare[0]] = wanted
    drawing_frame = np.empty(frames, dtype=np.int64)
    stretches = []
    start = 0
    for length, hold in zip(lengths, holds):
        offsets = np.arange(length)
        drawing_frame[start:start + length] = start + offsets - offsets % hold
        stretches.append(HeldStretch(start, start + length - 1, hold))
        start += length
    drawing_index = np.concatenate([[0], np.cumsum(drawing_frame[1:] != drawing_frame[:-1])])
    return Timing(drawing_frame, drawing_index.astype(np.int64), tuple(stretches))
