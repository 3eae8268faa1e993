"""The script: how every object moves through the shot, planned once from the seed.

The plan guarantees the situations that make long colorization hard:

- the *wanderer* is on screen in frame 0, runs out of the frame, stays away at
  least :func:`return_gap` frames (100 for shots of 300 frames or more) and
  runs back in;
- the two *twins* (same shape, different colors) are off stage in frame 0,
  enter from opposite edges at the same moment and walk toward each other, so
  they cross on screen (one occluding the other);
- the *stroller* and the twins then wander (walk, idle, turn, jump), the
  wanderer also walks toward and away from the camera (it grows and shrinks);
- a *ball* bounces across the view a few times; *scenery* stands still in
  front of everyone.

Guarantees hold because pans are slower than walks (see :mod:`.stage`): a
figure walking toward an edge always reaches it. For shots too short for a
round trip, the wanderer just stays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .camera import CameraTrack
from .cast import Actor
from .figures import BALL_ROLL_POSES
from .stage import Stage
from .tracks import TURN_FRAMES, Track, TrackWriter

ENTRY_MARGIN = 2.0  # pixels between a figure and the frame edge when it is placed off screen


def return_gap(frames: int) -> int:
    """Fewest frames the wanderer stays away: 100, or a third of shorter shots."""
    return max(1, min(100, frames // 3))


@dataclass(frozen=True)
class Crossing:
    """Two objects meet (same place on screen) at ``frame``."""

    objects: tuple[int, int]
    frame: int


@dataclass(frozen=True)
class Script:
    """Tracks of all actors (same order as the actors) and the planned crossings."""

    tracks: tuple[Track, ...]
    crossings: tuple[Crossing, ...]


def direct(actors: list[Actor], stage: Stage, camera: CameraTrack, frames: int, rng: np.random.Generator) -> Script:
    """Plan every actor's track for a shot of ``frames`` frames."""
    planner = _Planner(stage, camera, frames, rng)
    tracks: dict[int, Track] = {}
    crossings = []
    twins = [a for a in actors if a.role == "twin"]
    tracks[twins[0].index], tracks[twins[1].index], crossing = planner.twins(*twins)
    if crossing is not None:
        crossings.append(crossing)
    for actor in actors:
        if actor.role == "stroller":
            tracks[actor.index] = planner.stroller(actor)
        elif actor.role == "wanderer":
            tracks[actor.index] = planner.wanderer(actor)
        elif actor.role == "ball":
            tracks[actor.index] = planner.ball(actor)
        elif actor.role == "scenery":
            tracks[actor.index] = planner.scenery(actor)
    return Script(tuple(tracks[a.index] for a in actors), tuple(crossings))


class _Planner:
    def __init__(self, stage: Stage, camera: CameraTrack, frames: int, rng: np.random.Generator) -> None:
        self.stage, self.camera, self.frames, self.rng = stage, camera, frames, rng
        self.width = stage.view_width

    def _view_x(self, t: int, fraction: float) -> float:
        """World x of the point ``fraction`` across the view at frame ``t``."""
        return float(self.camera.x[min(t, self.frames - 1)]) + fraction * self.width

    def _half_width(self, actor: Actor, ground_y: float) -> float:
        return actor.figure.half_width * actor.size * float(self.stage.figure_height(ground_y)) + 1.0

    def _outside_x(self, t: int, side: int, half_width: float) -> float:
        """World x just outside the view's left (side -1) or right (side +1) edge at frame ``t``."""
        if side < 0:
            return self._view_x(t, 0.0) - half_width - ENTRY_MARGIN
        return self._view_x(t, 1.0) + half_width + ENTRY_MARGIN

    def _frames_to_leave(self, x: float, t: int, direction: int, speed: float, half_width: float) -> int:
        """Frames of moving from ``x`` (from frame ``t`` on) until wholly past the view edge ahead.

        ``direction`` is -1 (leave by the left edge) or +1 (by the right edge).
        """
        for k in range(1, self.frames - t + 1):
            screen_x = x + direction * speed * k - self.camera.x[t + k - 1]
            if (direction > 0 and screen_x - half_width > self.width + 1) or (
                    direction < 0 and screen_x + half_width < -1):
                return k
        return max(1, self.frames - t)

    def _wander(self, writer: TrackWriter, until: int, near_y: float | None = None) -> None:
        """Fill frames up to ``until`` with on-screen walks, idles, jumps and turns.

        With ``near_y``, some walks also change depth between the lane and ``near_y``.
        """
        lane_y = writer.ground_y
        rng, speed = self.rng, self.stage.walk_speed
        until = min(until, self.frames)
        while writer.t < until:
            remaining = until - writer.t
            choice = rng.random()
            if choice < 0.5 and remaining > TURN_FRAMES + 4:
                target_x = self._view_x(writer.t, rng.uniform(0.15, 0.85))
                target_y = writer.ground_y
                if near_y is not None and rng.random() < 0.4:
                    target_y = lane_y if writer.ground_y > lane_y + 1 else rng.uniform(lane_y, near_y)
                reach = (remaining - TURN_FRAMES - 1) * speed
                distance = math.hypot(target_x - writer.x, target_y - writer.ground_y)
                if distance > reach:
                    share = reach / distance
                    target_x = writer.x + (target_x - writer.x) * share
                    target_y = writer.ground_y + (target_y - writer.ground_y) * share
                writer.walk_to(target_x, target_y)
            elif choice < 0.62 and remaining >= 14:
                writer.jump(int(rng.integers(14, min(remaining, 20) + 1)))
            elif choice < 0.72 and remaining >= TURN_FRAMES:
                writer.turn()
            else:
                writer.idle(int(min(remaining, rng.integers(18, 61))))

    def stroller(self, actor: Actor) -> Track:
        rng = self.rng
        if rng.random() < 0.6:
            writer = TrackWriter(self.frames, self.stage, self._view_x(0, rng.uniform(0.1, 0.9)), actor.ground_y,
                                 facing=rng.choice([-1.0, 1.0]))
        else:
            writer = TrackWriter(self.frames, self.stage, 0.0, actor.ground_y)
            writer.offstage(int(rng.integers(1, max(2, self.frames // 4))))
            side = int(rng.choice([-1, 1]))
            outside = self._outside_x(writer.t, side, self._half_width(actor, actor.ground_y))
            writer.place(outside, actor.ground_y, -side)
        self._wander(writer, self.frames)
        return writer.track

    def twins(self, first: Actor, second: Actor) -> tuple[Track, Track, Crossing | None]:
        """The twins enter from opposite edges at the same frame and walk into each other."""
        rng, speed = self.rng, self.stage.walk_speed
        half_first = self._half_width(first, first.ground_y)
        half_second = self._half_width(second, second.ground_y)
        meet_frames = (self.width + half_first + half_second + 2 * ENTRY_MARGIN) / (2.0 * speed)
        latest_entry = self.frames - 1 - int(math.ceil(meet_frames)) - 24
        earliest_entry = min(max(1, self.frames // 12), max(1, latest_entry))
        entry = int(rng.integers(earliest_entry, max(earliest_entry, min(latest_entry, int(0.4 * self.frames))) + 1))
        walk_on = int(math.ceil(meet_frames)) + int(rng.integers(20, 61))
        tracks = []
        for actor, half_width, side in ((first, half_first, -1), (second, half_second, 1)):
            writer = TrackWriter(self.frames, self.stage, 0.0, actor.ground_y)
            writer.offstage(entry)
            writer.place(self._outside_x(entry, side, half_width), actor.ground_y, facing=-side)
            writer.walk_for(walk_on, speed)
            self._wander(writer, self.frames)
            tracks.append(writer.track)
        meet = entry + int(round(meet_frames)) - 1
        crossing = Crossing((first.index, second.index), meet) if meet < self.frames else None
        return tracks[0], tracks[1], crossing

    def wanderer(self, actor: Actor) -> Track:
        """On screen at frame 0; runs off, stays away at least ``return_gap`` frames, runs back."""
        rng, stage = self.rng, self.stage
        writer = TrackWriter(self.frames, stage, self._view_x(0, rng.uniform(0.3, 0.7)), actor.ground_y,
                             facing=rng.choice([-1.0, 1.0]))
        gap = return_gap(self.frames)
        widest = self._half_width(actor, stage.nearest_y)
        screen_speed = stage.run_speed - stage.camera_top_speed  # slowest a runner crosses the view
        # Worst cases: the run starts mid-view (after a turn during which the camera kept panning), and the
        # return is seen only once the figure is wholly in view (clear of scenery), after a held drawing.
        turn_drift = TURN_FRAMES * stage.camera_top_speed
        leave_max = TURN_FRAMES + int(math.ceil((self.width / 2 + turn_drift + widest + 2) / screen_speed))
        on_lane = self._half_width(actor, actor.ground_y)
        enter_max = int(math.ceil((2 * on_lane + ENTRY_MARGIN + 2) / screen_speed)) + 3
        latest_exit = self.frames - 1 - leave_max - gap - enter_max
        if latest_exit < 1:
            self._wander(writer, self.frames, near_y=stage.nearest_y)
            return writer.track
        earliest_exit = min(max(1, self.frames // 10), latest_exit)
        exit_at = int(rng.integers(earliest_exit, min(latest_exit, self.frames * 3 // 10) + 1))
        self._wander(writer, exit_at, near_y=stage.nearest_y)
        screen_x = writer.x - self.camera.x[writer.t]
        direction = -1 if screen_x < self.width / 2 else 1
        writer.face(direction)
        here = self._half_width(actor, writer.ground_y)
        writer.walk_for(self._frames_to_leave(writer.x, writer.t, direction, stage.run_speed, here), stage.run_speed)
        slack = self.frames - 1 - enter_max - (writer.t + gap)
        writer.offstage(gap + int(rng.integers(0, max(0, min(slack, gap)) + 1)))
        side = int(rng.choice([-1, 1]))
        back = writer.t
        writer.place(self._outside_x(back, side, self._half_width(actor, actor.ground_y)), actor.ground_y, -side)
        writer.walk_to(self._view_x(back, rng.uniform(0.25, 0.75)), speed=stage.run_speed)
        self._wander(writer, self.frames, near_y=stage.nearest_y)
        return writer.track

    def ball(self, actor: Actor) -> Track:
        """Two or three bouncing passes across the view, off stage in between."""
        rng, stage = self.rng, self.stage
        writer = TrackWriter(self.frames, stage, 0.0, actor.ground_y)
        diameter = actor.size * float(stage.figure_height(actor.ground_y))
        half_width = self._half_width(actor, actor.ground_y)
        speed = 1.5 * stage.walk_speed
        for _ in range(int(rng.integers(2, 4))):
            writer.offstage(int(rng.integers(10, max(11, self.frames // 4))))
            if writer.done:
                break
            side = int(rng.choice([-1, 1]))
            start = self._outside_x(writer.t, side, half_width)
            across = self._frames_to_leave(start, writer.t, -side, speed, half_width)
            steps = np.arange(1, across + 1)
            xs = start - side * speed * steps
            period = rng.uniform(18, 30)
            lift = rng.uniform(0.12, 0.25) * stage.view_height * np.abs(np.sin(np.pi * steps / period))
            turned = -side * speed * steps / (diameter / 2.0)  # rolling: angle = distance / radius
            pose = np.floor(turned / (np.pi / BALL_ROLL_POSES)).astype(np.int64) % BALL_ROLL_POSES
            writer.write(xs, np.full(across, actor.ground_y), lift, np.ones(across), pose)
        writer.offstage(self.frames - writer.t)
        return writer.track

    def scenery(self, actor: Actor) -> Track:
        """Stands still somewhere on the panorama for the whole shot."""
        track = Track.empty(self.frames)
        track.present[:] = True
        track.x[:] = self.rng.uniform(0.05, 0.95) * self.stage.panorama_width
        track.ground_y[:] = actor.ground_y
        track.facing[:] = self.rng.choice([-1.0, 1.0])
        return track
