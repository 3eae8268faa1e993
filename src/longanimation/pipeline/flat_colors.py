"""Flat colors from the line art: paint-bucket regions, palette snapping and a color layer without lines.

Cel animation is painted region by region: every area the line art closes off
carries one flat color. A diffusion model's frames are not flat (its colors
drift inside a region and bleed across lines), and users of the peer tools
keep asking for exact flat colors, colors taken from the keyframes' palette
and a color layer to composite under the line layer (``../shared/REFERENCE.md``,
"Peers"). These are post-processing steps on finished frames; the model, its
memory and the fusion never see their output.

* :func:`closed_regions`: the areas between lines (4-connected, so a diagonal
  gap of one pixel in a stroke does not merge two areas);
* :func:`flatten_frame`: each region takes the per-channel median of the
  frame's colors inside it (robust to the bleeding at its border); line pixels
  keep the frame's colors, so colored lines stay colored;
* :func:`keyframe_palette` + ``palette_tolerance``: a region whose median lies
  within the tolerance (Euclidean RGB distance, 0-441) of a keyframe region's
  color takes that color exactly; farther ones (objects absent from the
  keyframes) keep their median;
* :class:`TrackedRegions`: regions followed from frame to frame
  (:func:`continued_regions`, the segment matching of paint-bucket tools such
  as BasicPBC), so an area keeps the keyframe's color exactly for as long as
  it can be followed from the keyframe, instead of having its color guessed
  again in every frame; its lines take the keyframe's line colors
  (:class:`LineColors`: cel lines are inked per character, not black);
* :func:`remove_lines`: every line pixel takes the color of the nearest
  non-line pixel (the color layer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

import cv2
import numpy as np

from ..errors import UserError
from .planning import drawing_members, held_drawing_groups, keyframes_by_drawing, plan_runs


def closed_regions(lineart: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the areas between lines: (H, W) bool, True = line -> (labels int32, count incl. 0 = lines)."""
    count, labels = cv2.connectedComponents((~lineart).astype(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    return labels, count


def region_medians(frame: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Per-channel (lower) median of ``frame`` (H, W, 3) uint8 inside each label -> (count, 3) uint8.

    From one 256-bin histogram per label and channel: the median is the first
    value whose cumulative count passes half the label's size. Empty labels get 0.
    """
    flat_labels = labels.ravel().astype(np.int64)
    rank = (np.bincount(flat_labels, minlength=count) - 1) // 2
    medians = np.zeros((count, 3), np.uint8)
    for channel in range(3):
        histogram = np.bincount(flat_labels * 256 + frame[..., channel].ravel(), minlength=count * 256)
        cumulative = histogram.reshape(count, 256).cumsum(axis=1)
        medians[:, channel] = (cumulative <= rank[:, None]).sum(axis=1)
    return medians


def keyframe_palette(keyframes: Iterable[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The colors of the keyframes' regions: [(frame (H, W, 3) uint8, lineart (H, W) bool)] -> (K, 3) uint8."""
    colors = []
    for frame, lineart in keyframes:
        labels, count = closed_regions(lineart)
        colors.append(region_medians(frame, labels, count)[1:])
    palette = np.unique(np.concatenate(colors), axis=0) if colors else np.zeros((0, 3), np.uint8)
    if len(palette) == 0:
        raise UserError("the keyframes' line art closes no region: no palette to snap to")
    return palette


def snap_to_palette(colors: np.ndarray, palette: np.ndarray, tolerance: float) -> np.ndarray:
    """Replace each color (N, 3) by its nearest palette color when that one lies within ``tolerance``."""
    distances = np.linalg.norm(colors[:, None].astype(np.float32) - palette[None].astype(np.float32), axis=2)
    nearest = distances.argmin(axis=1)
    close = distances[np.arange(len(colors)), nearest] <= tolerance
    return np.where(close[:, None], palette[nearest], colors)


def flatten_frame(
    frame: np.ndarray, lineart: np.ndarray, palette: np.ndarray | None = None, palette_tolerance: float = 0.0
) -> np.ndarray:
    """One flat color per closed region of ``lineart`` (median of ``frame`` there, snapped to ``palette``)."""
    _check_sizes(frame, lineart)
    labels, count = closed_regions(lineart)
    colors = region_medians(frame, labels, count)
    if palette is not None:
        colors = snap_to_palette(colors, palette, palette_tolerance)
    return np.where(lineart[..., None], frame, colors[labels])


def _check_sizes(frame: np.ndarray, lineart: np.ndarray) -> None:
    if frame.shape[:2] != lineart.shape:
        raise UserError(f"frame is {frame.shape[1]}x{frame.shape[0]} but its line art {lineart.shape[1]}x{lineart.shape[0]}")


def _best_partners(first: np.ndarray, second: np.ndarray, shared: np.ndarray, size: int) -> np.ndarray:
    """For each label 0..size-1 of ``first``: the ``second`` label it shares most pixels with (-1: none).

    ``(first[i], second[i])`` are distinct label pairs sharing ``shared[i]`` pixels.
    """
    partners = np.full(size, -1, np.int64)
    if len(first) == 0:
        return partners
    order = np.lexsort((shared, first))  # by first label, then by shared pixels ascending
    first, second = first[order], second[order]
    last_of_label = np.r_[first[1:] != first[:-1], True]
    partners[first[last_of_label]] = second[last_of_label]
    return partners


def continued_regions(labels: np.ndarray, count: int, previous_labels: np.ndarray, previous_count: int) -> np.ndarray:
    """For each region of ``labels``, the region of ``previous_labels`` it continues, or -1 (always -1 for lines).

    Region ``r`` continues ``p`` when each is the other's best match: they
    share more pixels with each other than with any other region. An area
    that splits is continued by its largest part, merged areas by the largest
    of them; a region appearing where another was is not that one's
    continuation unless that one has no better match.
    """
    if labels.shape != previous_labels.shape:
        raise UserError("consecutive frames' line art differ in size")
    both = (labels > 0) & (previous_labels > 0)
    pairs, shared = np.unique(labels[both].astype(np.int64) * previous_count + previous_labels[both], return_counts=True)
    current, previous = np.divmod(pairs, previous_count)
    partner = _best_partners(current, previous, shared, count)
    partner_of_previous = _best_partners(previous, current, shared, previous_count)
    mutual = (partner >= 0) & (partner_of_previous[np.maximum(partner, 0)] == np.arange(count))
    return np.where(mutual, partner, -1)


def _nearest_paper(lineart: np.ndarray) -> np.ndarray:
    """(H, W) int64: the flat index of the nearest non-line pixel of every pixel (a non-line pixel: itself)."""
    # Distance to the nearest zero pixel (non-line), with that pixel's index as label.
    _, nearest = cv2.distanceTransformWithLabels(
        lineart.astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    paper = ~lineart
    source_of_label = np.zeros(int(nearest.max()) + 1, np.int64)
    source_of_label[nearest[paper]] = np.flatnonzero(paper.ravel())
    return source_of_label[nearest]


# Offsets of a 5x5 window, farthest first: painting them in this order leaves the nearest one on top.
_WINDOW = sorted(((dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if dy or dx), key=lambda o: -np.hypot(*o))


def line_sides(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two regions a line pixel separates: (H, W) int arrays ``near``, ``far`` (0 off the lines or none).

    ``near`` is the region of the nearest non-line pixel; ``far`` the nearest
    other region within two pixels (Chebyshev), so a stroke up to three
    pixels wide between two areas names both.
    """
    lines = labels == 0
    near, far = np.zeros_like(labels), np.zeros_like(labels)
    if not lines.any() or lines.all():
        return near, far
    near[lines] = labels.ravel()[_nearest_paper(lines)][lines]
    height, width = labels.shape
    padded = np.pad(labels, 2)
    for dy, dx in _WINDOW:
        neighbour = padded[2 + dy : 2 + dy + height, 2 + dx : 2 + dx + width]
        far = np.where(lines & (neighbour > 0) & (neighbour != near), neighbour, far)
    return near, far


@dataclass
class LineColors:
    """A keyframe's line colors, to paint the lines of the frames its regions are followed into.

    Looked up for a line pixel from the keyframe regions its two sides
    continue (:func:`line_sides`, :attr:`TrackedRegions.origin`): the median
    color of the keyframe's lines between that pair of regions, else of the
    lines nearest its near region, else (sides the keyframe does not show)
    the median of all the keyframe's lines (``ink``).
    """

    pairs: np.ndarray  # (P,) int64, sorted: smaller * regions + larger keyframe region of a line between them
    pair_colors: np.ndarray  # (P, 3) uint8
    region_colors: np.ndarray  # (regions, 3) uint8: lines nearest each keyframe region
    has_lines: np.ndarray  # (regions,) bool: the keyframe has line pixels nearest the region
    ink: np.ndarray  # (3,) uint8

    @classmethod
    def from_keyframe(cls, keyframe: np.ndarray, labels: np.ndarray, count: int) -> LineColors:
        lines = labels == 0
        near, far = (side[lines].astype(np.int64) for side in line_sides(labels))
        colors = keyframe[lines][None]  # (1, N, 3): the line pixels as one row for region_medians
        sided = far > 0
        keys, which = np.unique(np.minimum(near, far)[sided] * count + np.maximum(near, far)[sided], return_inverse=True)
        pair_colors = region_medians(colors[:, sided], which.reshape(1, -1), len(keys))
        ink = region_medians(colors, np.zeros((1, lines.sum()), np.int64), 1)[0]
        has_lines = np.bincount(near, minlength=count) > 0
        return cls(keys, pair_colors, region_medians(colors, near[None], count), has_lines, ink)

    def lookup(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        """(N, 3) uint8 colors of line pixels between keyframe regions ``near`` and ``far`` (N,) (-1: not shown)."""
        colors = np.broadcast_to(self.ink, (len(near), 3)).copy()
        near_shown = (near >= 0) & self.has_lines[np.maximum(near, 0)]
        colors[near_shown] = self.region_colors[near[near_shown]]
        if len(self.pairs):
            both = (near >= 0) & (far >= 0)
            keys = np.minimum(near, far) * len(self.has_lines) + np.maximum(near, far)
            slot = np.minimum(np.searchsorted(self.pairs, keys), len(self.pairs) - 1)
            found = both & (self.pairs[slot] == keys)
            colors[found] = self.pair_colors[slot[found]]
        return colors


@dataclass
class TrackedRegions:
    """Tracked flat colors: the closed regions of the last finished frame and the color each one carries.

    A run starts from its keyframe, whose regions carry the keyframe's colors
    exactly (``origin``: the keyframe region a region continues). In every
    following frame (:meth:`follow`) a region that continues a region of the
    previous frame (:func:`continued_regions`) inherits its color: exactly if
    it is a keyframe color, otherwise the pixel-weighted mean of the model's
    region medians over the whole track (``weight`` pixels so far), so one
    frame's guess for a region the keyframes do not show does not stick.
    Regions that continue nothing start a new track from the model's median.
    Lines take the keyframe's line colors (``lines``) by the regions on
    their two sides.
    """

    labels: np.ndarray  # (H, W) int32, 0 = line pixels
    colors: np.ndarray  # (regions,) + (3,) float64
    origin: np.ndarray  # (regions,) int64: the keyframe region continued, -1 for lines and new tracks
    weight: np.ndarray  # (regions,) float64: pixels behind an estimated color (0 for keyframe ones)
    lines: LineColors

    @property
    def known(self) -> np.ndarray:
        """(regions,) bool: the region carries a keyframe color."""
        return self.origin >= 0

    @classmethod
    def from_keyframe(cls, keyframe: np.ndarray, lineart: np.ndarray) -> TrackedRegions:
        _check_sizes(keyframe, lineart)
        labels, count = closed_regions(lineart)
        origin = np.where(np.arange(count) > 0, np.arange(count), -1)
        colors = region_medians(keyframe, labels, count).astype(np.float64)
        return cls(labels, colors, origin, np.zeros(count), LineColors.from_keyframe(keyframe, labels, count))

    def follow(self, frame: np.ndarray, lineart: np.ndarray) -> TrackedRegions:
        """The regions of the next frame (``frame``: the model's colors, ``lineart``: its line art)."""
        _check_sizes(frame, lineart)
        labels, count = closed_regions(lineart)
        source = continued_regions(labels, count, self.labels, len(self.colors))
        continues, source = source >= 0, np.maximum(source, 0)
        sizes = np.bincount(labels.ravel(), minlength=count).astype(np.float64)
        weight = np.where(continues, self.weight[source], 0.0) + sizes
        total = np.where(continues[:, None], self.colors[source] * self.weight[source, None], 0.0)
        estimate = (total + region_medians(frame, labels, count) * sizes[:, None]) / np.maximum(weight, 1)[:, None]
        origin = np.where(continues, self.origin[source], -1)
        known = origin >= 0
        colors = np.where(known[:, None], self.colors[source], estimate)
        return TrackedRegions(labels, colors, origin, np.where(known, 0.0, weight), self.lines)

    def paint(self, palette: np.ndarray | None = None, palette_tolerance: float = 0.0) -> np.ndarray:
        """The finished frame: each region in its color (estimated ones snapped to ``palette``), lines in the keyframe's."""
        colors = np.round(self.colors).astype(np.uint8)
        if palette is not None:
            colors = np.where(self.known[:, None], colors, snap_to_palette(colors, palette, palette_tolerance))
        painted = colors[self.labels]
        line = self.labels == 0
        near, far = line_sides(self.labels)  # 0 (no region) has origin -1: the keyframe does not show it
        painted[line] = self.lines.lookup(self.origin[near[line]], self.origin[far[line]])
        return painted

    def state_dict(self) -> dict[str, np.ndarray]:
        lines = {f"lines.{field.name}": getattr(self.lines, field.name) for field in fields(LineColors)}
        return {"labels": self.labels, "colors": self.colors, "origin": self.origin, "weight": self.weight} | lines

    @classmethod
    def from_state_dict(cls, state: Mapping[str, np.ndarray]) -> TrackedRegions:
        lines = LineColors(**{field.name: np.asarray(state[f"lines.{field.name}"]) for field in fields(LineColors)})
        return cls(**{name: np.asarray(state[name]) for name in ("labels", "colors", "origin", "weight")}, lines=lines)


def remove_lines(frame: np.ndarray, lineart: np.ndarray) -> np.ndarray:
    """The color layer: each line pixel of ``frame`` takes the color of the nearest non-line pixel."""
    if not lineart.any() or lineart.all():
        return frame.copy()
    return frame.reshape(-1, 3)[_nearest_paper(lineart)].reshape(frame.shape)


class FlatColors:
    """The pipeline's flat-color output: frames flattened as they are finished, run by run.

    ``keyframes`` maps frame indices to their colored keyframes, ``sketches``
    is the whole shot's line art. Without ``track`` every frame is flattened
    on its own (:func:`flatten_frame`); with it each run's frames, handed over
    in generation order after :meth:`begin_run`, follow the regions from the
    run's keyframe (:class:`TrackedRegions`). Tracking is then the
    correspondence: regions that continue a keyframe region take its color
    whatever the frame shows, and the others (new content) take the model's
    colors, so the pipeline hands it the model's frames without the pixel
    correspondence, which leaves new content to the model too: what it
    would put into a region that continues none is a guess from the areas
    and lines around it.
    """

    def __init__(
        self,
        sketches: np.ndarray,
        keyframes: Mapping[int, np.ndarray],
        palette_tolerance: float | None = None,
        track: bool = False,
    ):
        self.sketches, self.keyframes, self.track = sketches, keyframes, track
        self.palette = None
        if palette_tolerance is not None:
            self.palette = keyframe_palette((image, sketches[index]) for index, image in keyframes.items())
        self.tolerance = palette_tolerance or 0.0
        self.regions: TrackedRegions | None = None

    def begin_run(self, keyframe: int) -> None:
        """The next frames follow keyframe ``keyframe`` (a key of ``keyframes``)."""
        if self.track:
            self.regions = TrackedRegions.from_keyframe(self.keyframes[keyframe], self.sketches[keyframe])

    def __call__(self, index: int, image: np.ndarray) -> np.ndarray:
        """Frame ``index`` as colored (input size; with ``track``, the model's own frame) -> its flat colors."""
        lineart = self.sketches[index]
        if not self.track:
            return flatten_frame(image, lineart, self.palette, self.tolerance)
        self.regions = self.regions.follow(image, lineart)
        return self.regions.paint(self.palette, self.tolerance)

    def state_dict(self) -> dict[str, np.ndarray]:
        return self.regions.state_dict() if self.regions is not None else {}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        self.regions = TrackedRegions.from_state_dict(state) if state else None


def flatten_shot(
    frames: np.ndarray,
    sketches: np.ndarray,
    keyframes: Mapping[int, np.ndarray],
    palette_tolerance: float | None = None,
    track: bool = False,
    collapse_held_drawings: bool = True,
) -> np.ndarray:
    """``colorize --flat [--track-regions]``'s frames from its plain output ``frames`` (T, H, W, 3) uint8.

    Walks the shot as the pipeline does: held drawings once, runs from their
    keyframes (:func:`~longanimation.pipeline.planning.plan_runs`), keyframes
    as given. With ``track`` the pipeline flattens the model's own frames
    (:class:`FlatColors`), so ``frames`` must then be the plain output of
    ``--correspondence none``.
    """
    groups = held_drawing_groups(sketches) if collapse_held_drawings else list(range(len(sketches)))
    distinct = sorted(set(groups))
    keyframe_of_group = keyframes_by_drawing(groups, keyframes)
    finisher = FlatColors(sketches, keyframe_of_group, palette_tolerance, track)
    members = drawing_members(groups)
    flat = np.empty_like(frames)
    for run in plan_runs(len(distinct), sorted({distinct.index(groups[k]) for k in keyframes})):
        finisher.begin_run(distinct[run.keyframe])
        for position in run.frames:
            group = distinct[position]
            image = keyframe_of_group.get(group)
            flat[members[group]] = image if image is not None else finisher(group, frames[group])
    return flat
