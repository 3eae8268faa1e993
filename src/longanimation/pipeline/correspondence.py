"""Carrying colors from frames already colored to the next one, at the shot's own resolution.

The model colors a segment at its small working size; upscaled, its frames
transfer a palette, not a layout. What the keyframe (and every frame colored
after it) shows is known exactly, at native size, so each new frame of a run
takes its colors from the previous finished frame of the run wherever the line
art says the content corresponds, and from the model only where it says the
content is new (disocclusions, characters entering). This extends the
paper's reference-based conditioning (sec. 3.1) with dense correspondence
between line-art frames, as reference-based colorization systems for cel
animation do; the model and its memory (sec. 3.2) are what colors new content.

A strategy has the interface of :class:`ColorCarry`: ``begin_run`` with the
run's keyframe, then ``__call__`` with each drawing of the run in generation
order and the model's frame at input size, returning the output frame;
``state_dict``/``load_state_dict`` make it resumable. :data:`CARRIES` names them:

* ``"none"``: the model's frames as they are (the paper's pipeline, ablations);
* ``"flow"`` (:class:`FlowCarry`, the default). The camera's pan is tracked
  first (phase correlation against an anchor drawing, so that pans slower than
  a pixel per frame add up); the keyframe and the previous frame are moved
  with it in whole pixels (copied, never resampled). Then, per frame:

  1. pixels whose line art is unchanged within ``change_radius`` of them, and
     that lie inside the same enclosure of the line art as before, keep the
     keyframe's pixels exactly, else the previous frame's (a static background
     stays the keyframe's to the byte, and background a character uncovers
     again is the keyframe's, not what the frames between carried).
     Enclosures are the areas of the drawing with outline gaps up to
     ``max_gap`` closed (trapped-ball regions): the dotted outline extracted
     from a pixel-art sprite still encloses the sprite, so the place a sprite
     left is not taken for background the keyframe showed;
  2. around changed line art, dense optical flow between the distance fields of
     the two drawings (DIS, Kroeger et al. 2016) maps each pixel to the previous
     frame; a pixel takes the color it maps to when the flow is
     forward-backward consistent and the drawings agree there (the distance to
     the nearest line matches), which rejects occluded and disoccluded pixels;
  3. pixels still without a color take the nearest carried pixel of the same
     closed area of the line art (cel areas are one color), when the area is
     not the background-swallowing kind (most of it must be carried);
  4. an area with nothing carried takes the color of the previous area it
     overlaps most, when that overlap is mutual;
  5. the rest is new content: the model's colors, pixel for pixel (lines and
     small areas included: where the flow found no match, the model's guess
     is better than a neighbour's color).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import cv2
import numpy as np

from ..data.gap_closing import trapped_ball_regions
from ..errors import UserError


class ColorCarry(Protocol):
    """How a run's frames take colors from the frames colored before them."""

    def begin_run(self, keyframe: np.ndarray, lineart: np.ndarray) -> None: ...

    def __call__(self, lineart: np.ndarray, model_frame: np.ndarray) -> np.ndarray: ...

    def state_dict(self) -> dict[str, np.ndarray]: ...

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None: ...


class NoCarry:
    """The model's frames as they are: the paper's pipeline (for ablations)."""

    def begin_run(self, keyframe: np.ndarray, lineart: np.ndarray) -> None:
        pass

    def __call__(self, lineart: np.ndarray, model_frame: np.ndarray) -> np.ndarray:
        return model_frame

    def state_dict(self) -> dict[str, np.ndarray]:
        return {}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        pass


@dataclass(frozen=True)
class FlowCarryConfig:
    """Settings of :class:`FlowCarry` (pixels unless said otherwise)."""

    change_radius: int = 3
    """Pixels farther than this from any change of the line art are copied as they are (the paint of a
    moving sprite reaches a few pixels past the outline extracted from it)."""
    max_distance: float = 24.0
    """Distance fields are clipped here: the flow sees lines up to this far away."""
    consistency: float = 1.5
    """Forward-backward flow error a carried pixel may have."""
    line_agreement: float = 1.5
    """How much the distance to the nearest line may differ between a pixel and where it maps."""
    margin: int = 48
    """Flow is computed on the box around the changes, grown by this much."""
    min_carried_share: float = 0.5
    """An area is filled from its carried pixels only if at least this share of it was carried."""
    min_camera_response: float = 0.1
    """Phase-correlation peak below which the drawings show no common camera motion."""
    min_area_agreement: float = 0.6
    """Share of an area's changed pixels that must map into one area of the previous drawing."""
    max_area_ratio: float = 2.0
    """Two corresponding areas differ in size by at most this factor."""
    max_anchor_shift: float = 16.0
    """The pan is measured against an anchor drawing until it moved this far; then the current one anchors."""
    max_gap: int = 10
    """Widest gap (px) in an outline that still encloses its inside, for the unchanged pixels of step 1."""

    def __post_init__(self) -> None:
        values = (
            self.max_distance, self.consistency, self.line_agreement, self.min_carried_share,
            self.min_area_agreement, self.max_area_ratio - 1, self.max_anchor_shift,
        )
        counts = (self.change_radius, self.margin, self.max_gap)
        if min(counts) < 0 or not all(np.isfinite(values)) or min(values) <= 0:
            raise UserError(f"bad flow correspondence settings: {self}")


def distance_field(lineart: np.ndarray, clip: float) -> np.ndarray:
    """Distance (px) of every pixel to the nearest line, clipped at ``clip``; float32 (H, W)."""
    if not lineart.any():
        return np.full(lineart.shape, clip, np.float32)
    distance = cv2.distanceTransform((~lineart).astype(np.uint8), cv2.DIST_L2, 3)
    return np.minimum(distance, clip)


@dataclass(frozen=True)
class AreaOverlap:
    """How the areas of two drawings overlap in place: pixel counts of every (current, previous) pair."""

    current: np.ndarray  # area id of each pair
    previous: np.ndarray
    pixels: np.ndarray
    sizes: np.ndarray  # pixels of each current area
    previous_sizes: np.ndarray

    @classmethod
    def of(cls, areas: np.ndarray, previous_areas: np.ndarray) -> AreaOverlap:
        both = (areas >= 0) & (previous_areas >= 0)
        width = max(int(previous_areas.max()) + 1, 1)
        pairs, pixels = np.unique(areas[both].astype(np.int64) * width + previous_areas[both], return_counts=True)
        return cls(
            pairs // width,
            pairs % width,
            pixels,
            np.bincount(areas[areas >= 0].ravel(), minlength=max(int(areas.max()) + 1, 1)),
            np.bincount(previous_areas[previous_areas >= 0].ravel(), minlength=width),
        )

    def iou(self) -> np.ndarray:
        """Intersection over union of each pair."""
        union = self.sizes[self.current] + self.previous_sizes[self.previous] - self.pixels
        return self.pixels / np.maximum(union, 1)

    def mutual_partners(self) -> np.ndarray:
        """For each current area, the previous area it shares most pixels with when that one shares most with it."""
        partner = np.full(len(self.sizes), -1, np.int64)
        if not len(self.pixels):
            return partner
        best_of_current = _argmax_by(self.current, self.pixels, len(self.sizes))
        best_of_previous = _argmax_by(self.previous, self.pixels, len(self.previous_sizes))
        mutual = (best_of_current[self.current] == np.arange(len(self.pixels))) & (
            best_of_previous[self.previous] == np.arange(len(self.pixels))
        )
        partner[self.current[mutual]] = self.previous[mutual]
        return partner


def _argmax_by(groups: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """Index (into ``values``) of the largest value of each group; -1 for empty groups."""
    order = np.lexsort((-values, groups))
    first = np.r_[True, groups[order][1:] != groups[order][:-1]]
    best = np.full(count, -1, np.int64)
    best[groups[order][first]] = order[first]
    return best


def camera_motion(anchor: np.ndarray, current: np.ndarray, config: FlowCarryConfig) -> np.ndarray | None:
    """Sub-pixel translation (dx, dy) of the whole drawing from ``anchor`` to ``current`` (a pan); None if unknown.

    Phase correlation of the clipped distance fields: one peak for the painted
    background that dominates a frame, whatever the characters do. Measured
    against an anchor drawing rather than the previous frame, a slow pan (a
    fraction of a pixel per frame) adds up instead of vanishing in rounding.
    None when the drawings show no common motion (a weak peak, or one that is
    a large moving character's: it explains no more lines than standing still).
    """
    clip = config.max_distance
    if min(anchor.shape) < 8 or not (anchor.any() and current.any()):
        return None
    before, after = distance_field(anchor, clip), distance_field(current, clip)
    window = cv2.createHanningWindow(anchor.shape[::-1], cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(before, after, window)
    if response < config.min_camera_response or not np.isfinite([dx, dy]).all():
        return None
    step = (round(dx), round(dy))
    if step != (0, 0) and not pan_explains(anchor, current, step, margin=1.2):
        return None
    return np.array([dx, dy])


def pan_explains(previous: np.ndarray, current: np.ndarray, step: tuple[int, int], margin: float = 1.0) -> bool:
    """Whether moving ``previous`` by ``step`` explains ``current``'s lines better than standing still, everywhere.

    A pan moves the whole picture: ``step`` must match more than ``margin``
    times the line pixels no step matches, over the drawing and for most of
    its separate objects (connected groups of lines, each of at least 1% of
    the lines). Over line art of characters on a flat background, one
    character's jump explains only its own lines and is not taken for the camera.
    """
    moved = current & shifted(previous, step, False)
    still = current & previous
    if int(moved.sum()) <= margin * int(still.sum()):
        return False
    grouped = cv2.dilate(current.astype(np.uint8), np.ones((5, 5), np.uint8))
    count, objects = cv2.connectedComponents(grouped, connectivity=8)
    lines = np.bincount(objects[current], minlength=count)
    large = np.nonzero(lines >= max(0.01 * lines.sum(), 1))[0]
    won = np.bincount(objects[moved], minlength=count)[large] > np.bincount(objects[still], minlength=count)[large]
    return 2 * int(won.sum()) > len(large)


def shifted(image: np.ndarray, shift: tuple[int, int], fill) -> np.ndarray:
    """``image`` moved by whole pixels ``shift`` = (dx, dy): out(y, x) = image(y - dy, x - dx); new borders ``fill``."""
    dx, dy = shift
    height, width = image.shape[:2]
    out = np.full_like(image, fill)
    if abs(dx) >= width or abs(dy) >= height:
        return out
    out[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = image[
        max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
    ]
    return out


def unchanged_pixels(
    previous: np.ndarray, current: np.ndarray, enclosures: np.ndarray, previous_enclosures: np.ndarray,
    config: FlowCarryConfig,
) -> np.ndarray:
    """Pixels whose content did not change: no line changed within ``change_radius`` and in the same enclosure.

    "Same enclosure" (:func:`enclosure_labels` of the two drawings): a line in
    both, or inside two enclosures that mostly coincide (IoU >= 1/2); far
    from any line a moving character's inside looks unchanged pixel by pixel,
    but its enclosure moved.
    """
    # A line moved by one pixel (a pan's rounding) is not a change.
    near = np.ones((3, 3), np.uint8)
    near_previous = cv2.dilate(previous.astype(np.uint8), near).astype(bool)
    near_current = cv2.dilate(current.astype(np.uint8), near).astype(bool)
    changed = ((current & ~near_previous) | (previous & ~near_current)).astype(np.uint8)
    radius = config.change_radius
    if radius and changed.any():
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        changed = cv2.dilate(changed, kernel)
    overlap = AreaOverlap.of(enclosures, previous_enclosures)
    stable = overlap.iou() >= 0.5  # at most one stable partner per enclosure
    stable_previous = np.full(len(overlap.sizes), -1, np.int64)
    stable_previous[overlap.current[stable]] = overlap.previous[stable]
    in_place = np.where(
        enclosures < 0,
        previous_enclosures < 0,
        (previous_enclosures >= 0) & (stable_previous[np.maximum(enclosures, 0)] == previous_enclosures),
    )
    return in_place & ~changed.astype(bool)


def dense_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(H, W, 2) displacement taking each pixel of ``source`` to ``target`` (8-bit images), DIS flow."""
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return flow.calc(source, target, None)


def sample(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Nearest-pixel values of ``image`` at float coordinates (clamped to the frame)."""
    height, width = image.shape[:2]
    rows = np.clip(np.rint(y), 0, height - 1).astype(np.intp)
    cols = np.clip(np.rint(x), 0, width - 1).astype(np.intp)
    return image[rows, cols]


def box_around(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The bounding box of ``mask``'s pixels, grown by ``margin`` and clipped to the frame."""
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    height, width = mask.shape
    return (
        slice(max(rows[0] - margin, 0), min(rows[-1] + margin + 1, height)),
        slice(max(cols[0] - margin, 0), min(cols[-1] + margin + 1, width)),
    )


def area_labels(lineart: np.ndarray) -> np.ndarray:
    """Closed areas of a drawing: 4-connected components of its non-line pixels, ids from 0; lines -1."""
    _, labels = cv2.connectedComponents((~lineart).astype(np.uint8), connectivity=4)
    labels = labels.astype(np.int32) - 1
    labels[lineart] = -1
    return labels


def enclosure_labels(lineart: np.ndarray, max_gap: int) -> np.ndarray:
    """The areas of a drawing with its outline gaps up to ``max_gap`` px closed: ids from 0, lines -1.

    Trapped-ball regions (:func:`~longanimation.data.gap_closing.trapped_ball_regions`):
    a ball too wide for the gaps cannot leave an outline that has them.
    """
    return trapped_ball_regions(lineart, (max_gap + 1) // 2) - 1


def corresponding_areas(
    areas: np.ndarray, sources: np.ndarray, sizes: np.ndarray, previous_sizes: np.ndarray, config: FlowCarryConfig
) -> np.ndarray:
    """For each area of the current drawing, the area of the previous one its pixels map into, else -1.

    ``areas`` and ``sources`` are the current and mapped-to previous area ids
    (-1: a line) of the pixels the flow carries; ``sizes`` and
    ``previous_sizes`` the pixel counts of every area of the two drawings. An
    area corresponds to the previous area most of its pixels map into when
    that share reaches ``min_area_agreement`` and the two sizes are within
    ``max_area_ratio``: a cel area moves and deforms but stays one area, so a
    flow that scatters an area over several is not trusted.
    """
    partner = np.full(len(sizes), -1, np.int64)
    if not areas.size:
        return partner
    width = len(previous_sizes) + 1
    pairs, votes = np.unique(areas.astype(np.int64) * width + (sources + 1), return_counts=True)
    area, source = pairs // width, pairs % width - 1
    order = np.lexsort((-votes, area))  # per area, its most voted source first
    area, source, votes = area[order], source[order], votes[order]
    first = np.r_[True, area[1:] != area[:-1]]
    totals = np.bincount(area, weights=votes, minlength=len(sizes))
    area, source, share = area[first], source[first], votes[first] / totals[area[first]]
    ratio = sizes[area] / np.maximum(previous_sizes[np.maximum(source, 0)], 1)
    good = (source >= 0) & (share >= config.min_area_agreement)
    good &= (ratio <= config.max_area_ratio) & (ratio >= 1 / config.max_area_ratio)
    partner[area[good]] = source[good]
    return partner


def area_sizes(labels: np.ndarray) -> np.ndarray:
    """Pixel count of every area id of ``labels`` (negative ids: lines, nothing seen)."""
    return np.bincount(labels[labels >= 0].ravel(), minlength=max(int(labels.max()) + 1, 1))


@dataclass(frozen=True)
class FlowMatch:
    """Where each pixel of the current drawing maps in the previous one, by dense flow in both directions."""

    x: np.ndarray  # (H, W) float32 source coordinates in the previous drawing
    y: np.ndarray
    consistent: np.ndarray  # (H, W) bool: forward-backward round trip within ``consistency``, inside the frame

    @classmethod
    def between(cls, previous_8: np.ndarray, current_8: np.ndarray, consistency: float) -> FlowMatch:
        """DIS flow of two 8-bit renderings of the drawings (their distance fields)."""
        backward = dense_flow(current_8, previous_8)  # current -> previous
        forward = dense_flow(previous_8, current_8)  # previous -> current
        height, width = current_8.shape
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        source_x, source_y = x + backward[..., 0], y + backward[..., 1]
        round_trip = backward + sample(forward, source_x, source_y)
        consistent = np.hypot(round_trip[..., 0], round_trip[..., 1]) <= consistency
        consistent &= (source_x >= -0.5) & (source_x <= width - 0.5) & (source_y >= -0.5) & (source_y <= height - 0.5)
        return cls(source_x, source_y, consistent)

    def take(self, image: np.ndarray) -> np.ndarray:
        """``image`` (of the previous drawing) at every pixel's source."""
        return sample(image, self.x, self.y)


def carry_by_flow(
    previous_image: np.ndarray,
    previous_areas: np.ndarray,
    previous_lineart: np.ndarray,
    areas: np.ndarray,
    lineart: np.ndarray,
    wanted: np.ndarray,
    config: FlowCarryConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Step 2: colors for the ``wanted`` pixels from the previous frame, and where they were carried.

    ``areas``/``previous_areas`` are the drawings' :func:`area_labels`. A
    pixel is carried when the flow is consistent there, the drawings agree, and
    it maps into the area of the previous drawing that corresponds to its own
    (:func:`corresponding_areas`), or from a line onto a line.
    Returns (colors (H, W, 3) uint8, carried (H, W) bool); only ``wanted`` pixels can be carried.
    """
    colors = np.zeros_like(previous_image)
    carried = np.zeros(lineart.shape, bool)
    if not wanted.any():
        return colors, carried
    rows, cols = box_around(wanted, config.margin)
    clip = config.max_distance
    before = distance_field(previous_lineart[rows, cols], clip)
    after = distance_field(lineart[rows, cols], clip)
    before_8, after_8 = (np.rint(d * (255.0 / clip)).astype(np.uint8) for d in (before, after))
    match = FlowMatch.between(before_8, after_8, config.consistency)
    agrees = np.abs(match.take(before) - after) <= config.line_agreement
    box_areas = areas[rows, cols]
    box_sources = match.take(previous_areas[rows, cols])
    trusted = match.consistent & agrees & wanted[rows, cols] & (box_sources >= -1)  # -2: off the previous frame
    voting = trusted & (box_areas >= 0)
    partner = corresponding_areas(
        box_areas[voting], box_sources[voting], area_sizes(areas), area_sizes(previous_areas), config
    )
    on_line = box_areas < 0
    matched = np.where(on_line, box_sources == -1, (box_sources >= 0) & (partner[np.maximum(box_areas, 0)] == box_sources))
    colors[rows, cols] = match.take(previous_image[rows, cols])
    carried[rows, cols] = trusted & matched
    return colors, carried


def nearest_known(known: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every unknown pixel and the nearest known one: (rows, cols, source rows, source cols, distances)."""
    unknown = ~known
    # A Voronoi labelling of the known pixels: each unknown pixel gets the label of its nearest known one.
    distances, nearest = cv2.distanceTransformWithLabels(
        unknown.astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    known_rows, known_cols = np.nonzero(known)
    lookup_rows = np.zeros(nearest.max() + 1, np.intp)
    lookup_cols = np.zeros(nearest.max() + 1, np.intp)
    lookup_rows[nearest[known_rows, known_cols]] = known_rows
    lookup_cols[nearest[known_rows, known_cols]] = known_cols
    rows, cols = np.nonzero(unknown)
    return rows, cols, lookup_rows[nearest[rows, cols]], lookup_cols[nearest[rows, cols]], distances[rows, cols]


def fill_within_areas(
    image: np.ndarray, known: np.ndarray, labels: np.ndarray, min_share: float
) -> tuple[np.ndarray, np.ndarray]:
    """Step 3: unknown pixels of a closed area take the nearest known pixel of that area.

    Only areas of which at least ``min_share`` is known are filled (an area the
    line art does not close can swallow the frame; its few known pixels say
    little about the rest). Line pixels take the nearest known line pixel
    within two pixels. Returns the image and the updated known mask.
    """
    if known.all() or not known.any():
        return image, known
    rows, cols, source_rows, source_cols, distances = nearest_known(known)
    area = labels[rows, cols]
    same_area = labels[source_rows, source_cols] == area
    counts = np.bincount(labels[labels >= 0].ravel(), minlength=int(labels.max()) + 1)
    known_counts = np.bincount(labels[known & (labels >= 0)].ravel(), minlength=int(labels.max()) + 1)
    share = known_counts / np.maximum(counts, 1)
    on_line = area < 0
    fill = np.where(on_line, same_area & (distances <= 2), same_area & (share[np.maximum(area, 0)] >= min_share))
    out = image.copy()
    out[rows[fill], cols[fill]] = image[source_rows[fill], source_cols[fill]]
    known = known.copy()
    known[rows[fill], cols[fill]] = True
    return out, known


def fill_from_overlap(
    image: np.ndarray,
    known: np.ndarray,
    areas: np.ndarray,
    previous_image: np.ndarray,
    previous_areas: np.ndarray,
    overlap: AreaOverlap,
) -> tuple[np.ndarray, np.ndarray]:
    """Step 4: an area with nothing carried takes the median color of its mutual best-overlap previous area.

    The flow can fail on an area that moved little but changed shape (a
    limb, a turning head); overlap in place still ties it to one area.
    """
    partner = overlap.mutual_partners()
    todo = np.unique(areas[~known & (areas >= 0)])
    todo = todo[partner[todo] >= 0]
    if not todo.size:
        return image, known
    out, known = image.copy(), known.copy()
    for area in todo:
        source = previous_areas == partner[area]
        target = (areas == area) & ~known
        out[target] = np.median(previous_image[source], axis=0).astype(np.uint8)
        known[target] = True
    return out, known


class Labels(NamedTuple):
    """A drawing's :func:`area_labels` and :func:`enclosure_labels`."""

    areas: np.ndarray
    enclosures: np.ndarray

    @classmethod
    def of(cls, lineart: np.ndarray, config: FlowCarryConfig) -> Labels:
        return cls(area_labels(lineart), enclosure_labels(lineart, config.max_gap))


class Aligned(NamedTuple):
    """A colored frame moved onto the current camera: its pixels, line art, labels (-2: not seen) and where seen."""

    image: np.ndarray
    lineart: np.ndarray
    areas: np.ndarray
    enclosures: np.ndarray
    defined: np.ndarray


class FlowCarry:
    """Colors carried frame to frame by line-art correspondence; the model's colors for new content."""

    def __init__(self, config: FlowCarryConfig = FlowCarryConfig()):
        self.config = config
        self.keyframe: np.ndarray | None = None
        self.keyframe_lineart: np.ndarray | None = None
        self.previous_image: np.ndarray | None = None
        self.previous_lineart: np.ndarray | None = None
        self.camera = np.zeros(2)  # the pan since the keyframe, sub-pixel (dx, dy); frames move by its rounded steps
        self.anchor_lineart: np.ndarray | None = None  # the drawing the pan is measured against
        self.anchor_camera = np.zeros(2)
        self.labels: tuple[Labels, Labels] | None = None  # of the keyframe and the previous drawing
        self.last_carried_share = 0.0

    def begin_run(self, keyframe: np.ndarray, lineart: np.ndarray) -> None:
        """The run's next frames follow ``keyframe`` (input size) drawn as ``lineart``."""
        self.keyframe, self.keyframe_lineart = keyframe, lineart
        self.previous_image, self.previous_lineart = keyframe, lineart
        self.anchor_lineart, self.anchor_camera = lineart, np.zeros(2)
        self.camera = np.zeros(2)
        self.labels = None

    def track_camera(self, lineart: np.ndarray) -> None:
        """The pan from the keyframe to ``lineart``, measured against the anchor drawing.

        When the anchor no longer matches (too far, or too much changed) the
        pan goes on from the previous frame, whole pixels only, and the current
        drawing becomes the anchor. A new whole-pixel step is taken only when
        :func:`pan_explains` confirms it against the previous drawing: a moving
        character can bias the sub-pixel estimate, not move the frame.
        """
        config = self.config
        motion = camera_motion(self.anchor_lineart, lineart, config)
        if motion is not None and np.abs(motion).max() <= config.max_anchor_shift:
            camera = self.anchor_camera + motion
        else:
            motion = camera_motion(self.previous_lineart, lineart, config)
            camera = self.camera + (np.rint(motion) if motion is not None else 0)
            self.anchor_lineart = lineart
        step = tuple(int(v) for v in np.rint(camera).astype(int) - np.rint(self.camera).astype(int))
        if step != (0, 0) and not pan_explains(self.previous_lineart, lineart, step):
            camera, self.anchor_lineart = self.camera, lineart
        if self.anchor_lineart is lineart:
            self.anchor_camera = camera.copy()
        self.camera = camera

    def aligned(self, image: np.ndarray, lineart: np.ndarray, labels: Labels, camera: np.ndarray) -> Aligned:
        """``image`` drawn as ``lineart`` (with its ``labels``), seen at camera ``camera``, moved onto the
        current camera (whole pixels)."""
        step = tuple(int(v) for v in np.rint(self.camera).astype(int) - np.rint(camera).astype(int))
        if step == (0, 0):
            return Aligned(image, lineart, *labels, np.ones(lineart.shape, bool))
        return Aligned(
            shifted(image, step, 0), shifted(lineart, step, False),
            *(shifted(label, step, -2) for label in labels), shifted(np.ones(lineart.shape, bool), step, False),
        )

    def __call__(self, lineart: np.ndarray, model_frame: np.ndarray) -> np.ndarray:
        """The next drawing of the run and the model's frame for it (input size) -> the output frame."""
        if self.previous_image is None:
            raise RuntimeError("begin_run must be called before the first frame of a run")
        config = self.config
        previous_camera = self.camera
        self.track_camera(lineart)
        if self.labels is None:  # a new run or a loaded state: labels are derived, never saved
            self.labels = (Labels.of(self.keyframe_lineart, config), Labels.of(self.previous_lineart, config))
        keyframe_labels, previous_labels = self.labels
        keyframe = self.aligned(self.keyframe, self.keyframe_lineart, keyframe_labels, np.zeros(2))
        previous = self.aligned(self.previous_image, self.previous_lineart, previous_labels, previous_camera)
        labels = Labels.of(lineart, config)
        areas = labels.areas
        image = np.zeros_like(self.previous_image)
        known = np.zeros(lineart.shape, bool)
        for source in (keyframe, previous):  # step 1, the keyframe first: it is the truth, frames since may drift
            unchanged = ~known & source.defined & unchanged_pixels(
                source.lineart, lineart, labels.enclosures, source.enclosures, config
            )
            image[unchanged] = source.image[unchanged]
            known |= unchanged
        carried, by_flow = carry_by_flow(  # step 2
            previous.image, previous.areas, previous.lineart, areas, lineart, ~known, config
        )
        image[by_flow] = carried[by_flow]
        known |= by_flow
        image, known = fill_within_areas(image, known, areas, config.min_carried_share)  # step 3
        overlap = AreaOverlap.of(areas, previous.areas)
        image, known = fill_from_overlap(image, known, areas, previous.image, previous.areas, overlap)  # step 4
        image[~known] = model_frame[~known]  # step 5
        self.last_carried_share = float(known.mean())
        self.previous_image, self.previous_lineart = image, lineart
        self.labels = (keyframe_labels, labels)
        return image

    def state_dict(self) -> dict[str, np.ndarray]:
        if self.previous_image is None:
            return {}
        state = {
            "keyframe": self.keyframe, "keyframe_lineart": self.keyframe_lineart,
            "previous_image": self.previous_image, "previous_lineart": self.previous_lineart,
            "camera": self.camera, "anchor_lineart": self.anchor_lineart, "anchor_camera": self.anchor_camera,
        }
        return {name: np.array(value) for name, value in state.items()}  # copies: the anchor is often another

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        self.keyframe = state.get("keyframe")
        self.keyframe_lineart = state.get("keyframe_lineart")
        self.previous_image = state.get("previous_image")
        self.previous_lineart = state.get("previous_lineart")
        self.camera = np.asarray(state.get("camera", np.zeros(2)), np.float64)
        self.anchor_lineart = state.get("anchor_lineart")
        self.anchor_camera = np.asarray(state.get("anchor_camera", np.zeros(2)), np.float64)
        self.labels = None


CARRIES = {"none": NoCarry, "flow": FlowCarry}
"""Correspondence strategies by the name ``ColorizeOptions.correspondence`` takes; each is built without
arguments."""
