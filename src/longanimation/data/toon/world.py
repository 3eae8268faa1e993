"""A toon world: one synthetic cel-animated shot, rendered on demand, frame by frame.

Everything (set, cast, camera, script, held drawings) is planned from the
seed when the world is built, in a few tens of milliseconds; frames are then
rendered independently of each other, so any frame or clip can be rendered in
any order and always comes out the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .background import BACKGROUND, PLACES, paint_backdrop
from .camera import plan_camera
from .cast import caption, cast_actors
from .config import ToonConfig
from .figures import Figure
from .manifest import build_manifest
from .palette import RGB, SKY_SCHEMES
from .regions import RegionTable
from .render import Compositor, Sprite
from .script import Crossing, direct
from .stage import Stage
from .timing import HeldStretch, plan_timing


@dataclass(frozen=True)
class ToonFrame:
    """One rendered frame.

    ``color``: (H, W, 3) uint8 RGB; ``lineart``: (H, W) bool, True on lines;
    ``regions``: (H, W) int32 region ids (paint regions and outlines).
    """

    color: np.ndarray
    lineart: np.ndarray
    regions: np.ndarray


@dataclass(frozen=True)
class ToonClip:
    """Consecutive frames stacked on a leading axis, with the drawing index of each frame."""

    color: np.ndarray  # (N, H, W, 3) uint8
    lineart: np.ndarray  # (N, H, W) bool
    regions: np.ndarray  # (N, H, W) int32
    drawing_index: np.ndarray  # (N,) int64


@dataclass(frozen=True)
class ToonRegion:
    """A region id with its name and flat RGB color."""

    id: int
    name: str
    color: RGB


@dataclass(frozen=True)
class ToonObject:
    """An object of the world: the background (index 0), a character or a prop.

    ``index`` is also the depth order (larger is in front). ``template`` names
    the shape; objects sharing it (the twins) look alike but for their colors.
    """

    index: int
    name: str
    kind: str  # "background", "character" or "prop"
    role: str
    template: str
    parts: tuple[ToonRegion, ...]
    outline: ToonRegion


@dataclass(frozen=True)
class _Placement:
    """An actor's per-frame placement in view pixels."""

    figure: Figure
    part_ids: tuple[int, ...]
    present: np.ndarray
    pose: np.ndarray
    x: np.ndarray
    y: np.ndarray
    scale_x: np.ndarray
    scale_y: np.ndarray


class ToonWorld:
    """A synthetic cel-animation shot with exact ground truth.

    Example::

        world = ToonWorld(ToonConfig(seed=3, frames=600))
        frame = world.render(42)             # ToonFrame
        clip = world.render_range(100, 181)  # ToonClip of frames 100..180
        world.drawing_index(42)              # held frames share an index

    Attributes: ``config``; ``place`` and ``time_of_day`` of the set;
    ``caption``, a text prompt for the shot; ``objects``, every
    :class:`ToonObject` back to front; ``crossings``, the planned meetings of
    the look-alike twins; ``region_colors``, the (N, 3) uint8 flat RGB color
    of every region id (id 0 is unused).
    """

    def __init__(self, config: ToonConfig) -> None:
        self.config = config
        set_rng, cast_rng, camera_rng, timing_rng, script_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(5))
        stage = Stage(config.height, config.width)
        self.place = str(set_rng.choice(list(PLACES)))
        scheme = SKY_SCHEMES[str(set_rng.choice(list(SKY_SCHEMES)))]
        self.time_of_day = scheme.name

        table = RegionTable()
        backdrop = paint_backdrop(table, stage, scheme, self.place, set_rng)
        background_parts = tuple(range(1, len(table)))
        background_outline = table.add_outline(BACKGROUND, "background outline", scheme.ink)
        actors = cast_actors(table, stage, scheme, cast_rng)
        self.caption = caption(actors, self.place, scheme)
        camera = plan_camera(stage, config.frames, camera_rng)
        self._timing = plan_timing(config.frames, timing_rng)
        script = direct(actors, stage, camera, config.frames, script_rng)
        self.crossings: tuple[Crossing, ...] = script.crossings

        def region(region_id: int) -> ToonRegion:
            return ToonRegion(region_id, table[region_id].name, table[region_id].color)

        self.objects: tuple[ToonObject, ...] = (
            ToonObject(BACKGROUND, f"{self.place} at {self.time_of_day}", "background", "background", self.place,
                       tuple(region(i) for i in background_parts), region(background_outline)),
            *(ToonObject(a.index, a.name, a.kind, a.role, a.figure.template, tuple(region(i) for i in a.part_ids),
                         region(a.outline_id)) for a in actors),
        )
        self.region_colors: np.ndarray = table.colors()

        self._camera = camera
        self._placements = []
        for actor, track in zip(actors, script.tracks):
            height = stage.figure_height(track.ground_y) * actor.size
            self._placements.append(_Placement(
                actor.figure, actor.part_ids, track.present, track.pose,
                track.x - camera.x, track.ground_y - track.lift - camera.y, track.facing * height, height))
        self._compositor = Compositor(backdrop, config.height, config.width, self.region_colors,
                                      table.outline_lookup(), config.outline_width)

    @property
    def frames(self) -> int:
        return self.config.frames

    @property
    def height(self) -> int:
        return self.config.height

    @property
    def width(self) -> int:
        return self.config.width

    @property
    def region_count(self) -> int:
        """Number of region ids, counting the unused id 0: ids are ``1 .. region_count - 1``."""
        return len(self.region_colors)

    @property
    def held_stretches(self) -> tuple[HeldStretch, ...]:
        """Stretches animated on twos or threes (inclusive frame ranges)."""
        return self._timing.held_stretches

    def drawing_index(self, t: int) -> int:
        """Index of the drawing frame ``t`` shows; held frames share one."""
        return int(self._timing.drawing_index[self._check_frame(t)])

    def drawing_indices(self) -> np.ndarray:
        """(frames,) drawing index of every frame."""
        return self._timing.drawing_index.copy()

    def render(self, t: int) -> ToonFrame:
        """Render frame ``t`` (0-based)."""
        fills = self._paint(int(self._timing.drawing_frame[self._check_frame(t)]))
        lines, regions = self._compositor.ink(fills)
        return ToonFrame(self._compositor.colorize(regions), lines, regions)

    def render_regions(self, t: int) -> np.ndarray:
        """Only the (H, W) int32 region map of frame ``t`` (cheaper than :meth:`render`)."""
        fills = self._paint(int(self._timing.drawing_frame[self._check_frame(t)]))
        return self._compositor.ink(fills)[1]

    def render_range(self, start: int, stop: int) -> ToonClip:
        """Render frames ``start .. stop - 1`` as stacked arrays (held frames are rendered once)."""
        if not 0 <= start < stop <= self.frames:
            raise IndexError(f"frame range {start}..{stop} is not inside 0..{self.frames}")
        n, h, w = stop - start, self.height, self.width
        color = np.empty((n, h, w, 3), dtype=np.uint8)
        lineart = np.empty((n, h, w), dtype=bool)
        regions = np.empty((n, h, w), dtype=np.int32)
        drawing = self._timing.drawing_index[start:stop]
        for k in range(n):
            if k and drawing[k] == drawing[k - 1]:
                color[k], lineart[k], regions[k] = color[k - 1], lineart[k - 1], regions[k - 1]
                continue
            frame = self.render(start + k)
            color[k], lineart[k], regions[k] = frame.color, frame.lineart, frame.regions
        return ToonClip(color, lineart, regions, drawing.copy())

    def region_visibility(self) -> np.ndarray:
        """(frames, region_count) bool: which region ids appear in which frame (computed once, cached)."""
        return self._visibility_per_drawing[self._timing.drawing_index]

    @cached_property
    def _visibility_per_drawing(self) -> np.ndarray:
        starts = np.flatnonzero(np.r_[True, self._timing.drawing_index[1:] != self._timing.drawing_index[:-1]])
        seen = np.zeros((len(starts), self.region_count), dtype=bool)
        for k, t in enumerate(starts):
            seen[k] = np.bincount(self.render_regions(int(t)).ravel(), minlength=self.region_count) > 0
        return seen

    def manifest(self) -> dict:
        """The ground-truth description of the shot, JSON-serialisable (see :mod:`.manifest`)."""
        return build_manifest(self)

    def _check_frame(self, t: int) -> int:
        if not 0 <= t < self.frames:
            raise IndexError(f"frame {t} is not inside 0..{self.frames - 1}")
        return t

    def _paint(self, d: int) -> np.ndarray:
        sprites = [Sprite(p.figure, int(p.pose[d]), p.part_ids, p.x[d], p.y[d], p.scale_x[d], p.scale_y[d])
                   for p in self._placements if p.present[d]]
        return self._compositor.paint(int(self._camera.x[d]), int(self._camera.y[d]), sprites)
