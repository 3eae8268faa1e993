"""Motion tracks: where every object is, how it is posed and whether it is on stage, per frame.

A :class:`TrackWriter` builds a track move by move (walk, idle, turn, jump,
leave the stage...), carrying position, facing and walk phase from one move
to the next. Tracks are computed once per world; rendering frame ``t`` only
reads entry ``t``, so frames can be rendered in any order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .figures import POSE_BREATH, POSE_IDLE, POSE_JUMP, WALK_POSES
from .stage import Stage

STRIDE = 0.6  # ground covered by one walk cycle, in figure heights
TURN_FRAMES = 7
MIN_SQUASH = 0.2  # narrowest a figure gets halfway through a turn (fraction of its width)


@dataclass
class Track:
    """Per-frame state of one object, in world (panorama) pixels.

    ``x``/``ground_y`` place the figure's feet; ``lift`` raises it off the
    ground (jumps, bounces); ``facing`` is the horizontal scale (+1 faces
    right, -1 left, in between while turning); ``present`` is False while the
    object is off stage (not drawn at all).
    """

    present: np.ndarray
    x: np.ndarray
    ground_y: np.ndarray
    lift: np.ndarray
    facing: np.ndarray
    pose: np.ndarray

    @classmethod
    def empty(cls, frames: int) -> Track:
        return cls(
            present=np.zeros(frames, dtype=bool),
            x=np.zeros(frames),
            ground_y=np.zeros(frames),
            lift=np.zeros(frames),
            facing=np.ones(frames),
            pose=np.zeros(frames, dtype=np.int64),
        )


class TrackWriter:
    """Writes a character's :class:`Track` from frame 0 on, one move after the other."""

    def __init__(self, frames: int, stage: Stage, x: float, ground_y: float, facing: float = 1.0) -> None:
        self.track = Track.empty(frames)
        self.frames = frames
        self.stage = stage
        self.t = 0
        self.x, self.ground_y, self.facing = float(x), float(ground_y), math.copysign(1.0, facing)
        self.phase = 0.0

    @property
    def done(self) -> bool:
        return self.t >= self.frames

    @property
    def height(self) -> float:
        return float(self.stage.figure_height(self.ground_y))

    def write(self, x: np.ndarray, ground_y: np.ndarray, lift: np.ndarray, facing: np.ndarray,
              pose: np.ndarray, present: bool = True) -> None:
        """Append frames with the given states (cut at the end of the shot)."""
        n = min(len(x), self.frames - self.t)
        span = slice(self.t, self.t + n)
        track = self.track
        track.present[span] = present
        track.x[span], track.ground_y[span], track.lift[span] = x[:n], ground_y[:n], lift[:n]
        track.facing[span], track.pose[span] = facing[:n], pose[:n]
        self.t += n

    def _still(self, n: int, pose: np.ndarray, lift: np.ndarray | None = None, facing: np.ndarray | None = None,
               present: bool = True) -> None:
        self.write(np.full(n, self.x), np.full(n, self.ground_y), np.zeros(n) if lift is None else lift,
                   np.full(n, self.facing) if facing is None else facing, pose, present)

    def place(self, x: float, ground_y: float, facing: float) -> None:
        """Move to a new spot without animating (only sensible while off stage)."""
        self.x, self.ground_y, self.facing = float(x), float(ground_y), math.copysign(1.0, facing)

    def offstage(self, n: int) -> None:
        """Not drawn for ``n`` frames."""
        self._still(n, np.full(n, POSE_IDLE), present=False)

    def idle(self, n: int) -> None:
        """Stand, breathing (two idle drawings alternating every half second)."""
        frames = self.t + np.arange(n)
        self._still(n, np.where(frames // 12 % 2 == 0, POSE_IDLE, POSE_BREATH))

    def turn(self) -> None:
        """Turn around: squash to a sliver, flip, unsquash."""
        s = np.cos(np.pi * np.arange(1, TURN_FRAMES + 1) / TURN_FRAMES)
        facing = self.facing * np.where(s >= 0, np.maximum(s, MIN_SQUASH), np.minimum(s, -MIN_SQUASH))
        self._still(TURN_FRAMES, np.full(TURN_FRAMES, POSE_IDLE), facing=facing)
        self.facing = -self.facing

    def face(self, direction: float) -> None:
        """Turn around if not already facing ``direction`` (sign)."""
        if direction * self.facing < 0:
            self.turn()

    def jump(self, n: int) -> None:
        """Jump on the spot for ``n`` frames, as high as 0.35 of the figure's height."""
        s = np.arange(1, n + 1) / (n + 1)
        pose = np.full(n, POSE_JUMP)
        pose[[0, -1]] = POSE_IDLE
        self._still(n, pose, lift=0.35 * self.height * 4.0 * s * (1.0 - s))

    def walk_to(self, x: float, ground_y: float | None = None, speed: float | None = None) -> None:
        """Walk (turning first if needed) to ``x`` and, optionally, another ground depth ``ground_y``."""
        ground_y = self.ground_y if ground_y is None else ground_y
        speed = self.stage.walk_speed if speed is None else speed
        if x != self.x:
            self.face(x - self.x)
        distance = math.hypot(x - self.x, ground_y - self.ground_y)
        n = max(1, int(math.ceil(distance / speed)))
        self._travel(np.linspace(self.x, x, n + 1)[1:], np.linspace(self.ground_y, ground_y, n + 1)[1:])

    def walk_for(self, n: int, speed: float | None = None) -> None:
        """Walk straight ahead for ``n`` frames."""
        speed = self.stage.walk_speed if speed is None else speed
        self._travel(self.x + self.facing * speed * np.arange(1, n + 1), np.full(n, self.ground_y))

    def _travel(self, xs: np.ndarray, ys: np.ndarray) -> None:
        steps = np.hypot(np.diff(xs, prepend=self.x), np.diff(ys, prepend=self.ground_y))
        phase = self.phase + np.cumsum(steps / (STRIDE * self.stage.figure_height(ys)))
        pose = (np.floor(phase * WALK_POSES).astype(np.int64)) % WALK_POSES
        self.write(xs, ys, np.zeros(len(xs)), np.full(len(xs), self.facing), pose)
        self.x, self.ground_y, self.phase = float(xs[-1]), float(ys[-1]), float(phase[-1] % 1.0)
