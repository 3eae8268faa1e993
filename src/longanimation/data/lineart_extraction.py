"""Line art from colored animation frames: three classical extractors and the learned one.

- ``"regions"`` (the default of ``longanimation extract-sketches``, no weights):
  real frames (shaded, textured, dithered or painted sprites, dark
  backgrounds) whose areas are told apart by color more than by drawn ink.
  Lines are the boundaries between areas of different color plus the dark
  strokes, thinned to one pixel, so that the areas between them can be filled
  (see :func:`extract_region_lines` and :mod:`longanimation.data.gap_closing`).
- ``"dark-lines"`` (default of :func:`extract_lineart`, no weights): cel
  frames are flat color regions separated by drawn outlines that are thin and
  dark, though rarely pure black (dark brown, navy). A pixel is a line when it is dark in absolute terms AND
  darker than its surroundings: its CIE lightness L* is compared with a
  morphological closing of L* by a disk wider than any line (the "black
  top-hat"). The closing erases thin dark strokes and keeps everything wide,
  so a boundary between two flat fills (a step, not a stroke) and the inside
  of a dark flat fill both give zero contrast and are never lines. It stays
  :func:`extract_lineart`'s default because the training clips are made with
  it; on real frames it fails (dither dots are strokes to it, an outline
  against a dark background is not), so the CLI (``extract-sketches``,
  ``colorize --extract-sketches``) uses ``"regions"``. The real-shot
  benchmark keeps dark lines: its painted sprites' shading boundaries, which
  ``"regions"`` draws, move from frame to frame and hide what did not change.
- ``"xdog"``: the eXtended Difference-of-Gaussians (Winnemoeller et al., 2012)
  in its binary limit, for painted frames whose lines are not flat-dark. It is
  an edge detector: it also marks the darker side of strong color boundaries.
- ``"learned"``: the informative-drawings network
  (:class:`longanimation.models.lineart_generator.LineArtGenerator`), as in the
  LongAnimation release; weights must be given as a local safetensors file.

All of them return a bool (H, W) mask, ``True`` on lines. A drawn sketch that
only needs thresholding goes through :func:`longanimation.data.lineart.binarize`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..errors import UserError

if TYPE_CHECKING:
    from ..models.lineart_generator import LineArtGenerator

LINE_THRESHOLD = 0.78
"""Learned extractor: output value below which a pixel is a line (the LongAnimation release's threshold)."""

METHODS = ("regions", "dark-lines", "xdog", "learned")

MAX_PIXEL_SCALE = 8
"""Largest integer upscaling of pixel art that the ``"regions"`` extractor undoes."""


@dataclass(frozen=True)
class DarkLinesConfig:
    """Settings of the ``"dark-lines"`` extractor; ``min_contrast`` is its threshold."""

    min_contrast: float = 8.0
    """L* units (0-100) a line pixel must be darker than its line-free surroundings."""
    max_lightness: float = 50.0
    """L* above which a pixel is never a line, however it contrasts (light color details)."""
    max_line_width: int = 3
    """Widest outline in pixels; the closing disk is 2 * width + 1 across."""

    def __post_init__(self) -> None:
        if (
            not (math.isfinite(self.min_contrast) and math.isfinite(self.max_lightness))
            or self.min_contrast <= 0
            or not 0 < self.max_lightness <= 100
            or self.max_line_width < 1
        ):
            raise UserError(
                "dark-lines needs finite settings, min_contrast > 0, max_lightness within (0, 100] and max_line_width >= 1, "
                f"got {self.min_contrast}, {self.max_lightness}, {self.max_line_width}"
            )


@dataclass(frozen=True)
class RegionLinesConfig:
    """Settings of the ``"regions"`` extractor; ``min_contrast`` is its threshold.

    Boundaries are found on the frame's CIE Lab colors after a Gaussian blur
    of ``smoothing`` pixels, which averages dithering patterns and pixel-scale
    texture into the color they stand for (a 2-pixel checkerboard keeps under
    1 % of its contrast at the default) while a boundary between two areas
    keeps its full color step, only spread over a few pixels; thinning puts
    it back onto one pixel.
    """

    min_contrast: float = 14.0
    """Color step (CIE76 Delta E) between two areas for their boundary to be a line."""
    smoothing: float = 1.5
    """Sigma in pixels of the blur that removes dithering and texture before boundaries are sought."""
    stroke_contrast: float = 10.0
    """L* units a dark stroke must be darker than its surroundings (after a light blur)."""
    max_lightness: float = 55.0
    """L* above which a pixel is never a dark stroke."""
    max_line_width: int = 5
    """Widest dark stroke in pixels (upscaled pixel-art outlines are several pixels wide)."""
    min_fragment: int = 10
    """Line pieces of fewer pixels than this, touching nothing, are dropped (texture specks)."""
    pixel_scale: int | None = None
    """Size of one art pixel in frame pixels for pixel art upscaled by an integer, blocks starting at
    the top-left corner (None: size and start detected, see :func:`pixel_scale`; 1: never undone)."""

    def __post_init__(self) -> None:
        values = (self.min_contrast, self.smoothing, self.stroke_contrast, self.max_lightness)
        if (
            not all(math.isfinite(value) for value in values)
            or self.min_contrast <= 0
            or self.smoothing < 0.5
            or self.stroke_contrast <= 0
            or not 0 < self.max_lightness <= 100
            or self.max_line_width < 1
            or self.min_fragment < 0
            or (self.pixel_scale is not None and not 1 <= self.pixel_scale <= MAX_PIXEL_SCALE)
        ):
            raise UserError(
                "regions needs finite settings with min_contrast > 0, smoothing >= 0.5, stroke_contrast > 0, "
                f"max_lightness within (0, 100], max_line_width >= 1, min_fragment >= 0 and pixel_scale within "
                f"1-{MAX_PIXEL_SCALE}, got {self}"
            )


@dataclass(frozen=True)
class XDoGConfig:
    """Settings of the binary XDoG extractor; ``epsilon`` is its threshold.

    With S = (1 + p) G_sigma * L - p G_{k sigma} * L on lightness L in [0, 1],
    a pixel is a line where S < epsilon. On a flat region S = L, so flat fills
    darker than epsilon come out as solid ink, as in XDoG renderings.
    """

    epsilon: float = 0.1
    sigma: float = 0.8
    k: float = 1.6
    sharpening: float = 20.0

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.epsilon, self.sigma, self.k, self.sharpening)) or (
            self.sigma <= 0 or self.k <= 1 or self.sharpening < 0
        ):
            raise UserError(
                f"xdog needs finite settings, sigma > 0, k > 1 and sharpening >= 0, got {self.sigma}, {self.k}, {self.sharpening}"
            )


@dataclass(frozen=True)
class LearnedLinesConfig:
    """Settings of the learned extractor: lines where the network output is below ``threshold``."""

    threshold: float = LINE_THRESHOLD

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise UserError(f"the learned line threshold must be within (0, 1), got {self.threshold}")


MethodConfig = RegionLinesConfig | DarkLinesConfig | XDoGConfig | LearnedLinesConfig

_CONFIG_OF_METHOD: dict[str, type] = {
    "regions": RegionLinesConfig,
    "dark-lines": DarkLinesConfig,
    "xdog": XDoGConfig,
    "learned": LearnedLinesConfig,
}
_THRESHOLD_FIELD = {
    RegionLinesConfig: "min_contrast",
    DarkLinesConfig: "min_contrast",
    XDoGConfig: "epsilon",
    LearnedLinesConfig: "threshold",
}


def method_config(method: str, threshold: float | None = None) -> MethodConfig:
    """The default settings of ``method``, with its threshold replaced if ``threshold`` is given."""
    config_class = _config_class(method)
    config = config_class()
    if threshold is None:
        return config
    if not math.isfinite(threshold):
        raise UserError(f"the line threshold must be a finite number, got {threshold}")
    return dataclasses.replace(config, **{_THRESHOLD_FIELD[config_class]: threshold})


def extract_lineart(
    rgb: np.ndarray,
    method: str = "dark-lines",
    *,
    config: MethodConfig | None = None,
    generator: LineArtGenerator | None = None,
) -> np.ndarray:
    """Line mask (bool (H, W), True on lines) of one colored uint8 (H, W, 3) RGB frame.

    ``config`` defaults to the method's defaults (:func:`method_config`);
    ``method="learned"`` needs a loaded ``generator``.
    """
    config_class = _config_class(method)
    config = config_class() if config is None else config
    if not isinstance(config, config_class):
        raise UserError(f"method {method!r} takes a {config_class.__name__}, got {type(config).__name__}")
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise UserError(f"line extraction takes a uint8 (H, W, 3) RGB frame, got {rgb.dtype} {rgb.shape}")
    if isinstance(config, RegionLinesConfig):
        return extract_region_lines(rgb, config)
    if isinstance(config, DarkLinesConfig):
        return extract_dark_lines(rgb, config)
    if isinstance(config, XDoGConfig):
        return extract_xdog_lines(rgb, config)
    if generator is None:
        raise UserError("the learned line extractor needs its weights: pass a local .safetensors file")
    return generator.extract(rgb, threshold=config.threshold)


def lightness(rgb: np.ndarray) -> np.ndarray:
    """CIE L* (0 = black, 100 = white) of a uint8 RGB image, float32 (H, W)."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[..., 0]


def extract_dark_lines(rgb: np.ndarray, config: DarkLinesConfig = DarkLinesConfig()) -> np.ndarray:
    """Thin strokes darker than their surroundings by ``min_contrast`` and darker than ``max_lightness``."""
    lightness_map = lightness(rgb)
    size = 2 * config.max_line_width + 1
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    # the closing fills every dark structure the disk cannot fit into: thin strokes
    line_free = cv2.morphologyEx(lightness_map, cv2.MORPH_CLOSE, disk, borderType=cv2.BORDER_REPLICATE)
    darkening = line_free - lightness_map
    return (darkening >= config.min_contrast) & (lightness_map <= config.max_lightness)


def extract_xdog_lines(rgb: np.ndarray, config: XDoGConfig = XDoGConfig()) -> np.ndarray:
    """Binary XDoG: lines where the sharpened difference of Gaussians falls below ``epsilon``."""
    lightness_map = lightness(rgb) / 100.0
    fine = cv2.GaussianBlur(lightness_map, (0, 0), config.sigma, borderType=cv2.BORDER_REPLICATE)
    coarse = cv2.GaussianBlur(lightness_map, (0, 0), config.k * config.sigma, borderType=cv2.BORDER_REPLICATE)
    sharpened = (1.0 + config.sharpening) * fine - config.sharpening * coarse
    return sharpened < config.epsilon


def extract_region_lines(rgb: np.ndarray, config: RegionLinesConfig = RegionLinesConfig()) -> np.ndarray:
    """Boundaries between differently colored areas, plus dark strokes, thinned to one pixel.

    Why not dark strokes alone: on real frames (game sprites, painted cels) an
    area often meets its neighbour without any ink between them (a lit figure
    on a dark background, a shadow shape, a sel-out outline that is only a
    darker shade), and dithered or textured shading is full of small dark
    dots that a stroke detector takes for ink. The steps:

    1. dark strokes: the black top-hat of ``"dark-lines"`` (a pixel darker
       than a closing of L* by a disk wider than any stroke), required to
       hold on a lightly blurred L* as well, so that single dither dots no
       longer count while strokes keep most of their contrast; specks are dropped;
    2. boundaries, found on the frame with its strokes painted over by the
       nearest colors off them (so a stroke's own two flanks are no
       boundary, and a boundary running into a stroke runs on up to it):
       the pixels where the color gradient of the blurred frame (the
       Euclidean norm of the Lab derivatives, Di Zenzo's color gradient
       magnitude) is at least the slope that a step of ``min_contrast``
       (Delta E) has at its centre after the blur, so the threshold reads
       "areas differing by this much". That is a band a few pixels wide
       along every boundary. Unlike an edge detector with non-maximum
       suppression (Canny, 1986), which we tried first, a thresholded band
       does not break where boundaries meet: before gap closing, Canny left
       4 of the 8 areas of the real-style test frames open, the band 2;
    3. the union, rid of one-pixel slivers by a 3x3 closing, is thinned
       (:func:`thin_lines`) with the strokes held fixed, so strokes stay
       where (and as long as) they were drawn and the bands collapse onto
       them or onto their own centre lines; specks of fewer than
       ``min_fragment`` pixels are dropped.

    Pixel art blown up by an integer factor with nearest-neighbour sampling
    (sprite sheets, emulator captures) is first taken back to its own pixels
    (:func:`pixel_scale`): at k times the size its dithering would be k
    times coarser than the blur and its 1-pixel outlines k pixels wide. The
    lines found there are blown up again and thinned, so they run along the
    middle of the art's pixels.

    The result is 8-connected and one or two pixels wide, so the 4-connected
    areas between lines (:func:`longanimation.pipeline.flat_colors.closed_regions`)
    do not leak through its diagonal steps; gaps left (gaps in the ink,
    faint stretches of a boundary) are closed by
    :func:`longanimation.data.gap_closing.close_gaps`.
    """
    scale, row_offset, col_offset = pixel_scale(rgb) if config.pixel_scale is None else (config.pixel_scale, 0, 0)
    if scale > 1:
        return _extract_upscaled_pixel_art(rgb, scale, (row_offset, col_offset), config)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    # stroke specks (a dark background's texture next to an outline) must not stand in for a boundary
    strokes = remove_specks(_dark_strokes(lab[..., 0], config), 2 * config.min_fragment)
    boundaries = _color_boundaries(_without_strokes(lab, strokes), config)
    lines = strokes | boundaries
    lines = cv2.morphologyEx(lines.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)) > 0
    # the strokes stay as drawn: the boundary bands thin down onto them, or to their own centre lines
    return remove_specks(thin_lines(lines, keep=strokes), config.min_fragment)


def _without_strokes(lab: np.ndarray, strokes: np.ndarray) -> np.ndarray:
    """The frame with every stroke pixel painted the color of the nearest pixel off the strokes.

    The color gradient of what is left shows only where areas meet: a stroke
    between two like fills leaves no trace, one between unlike fills leaves
    their boundary right where it was drawn, and a boundary that runs into
    a stroke runs on up to it instead of being confused with the stroke's flanks.
    """
    if not strokes.any() or strokes.all():
        return lab
    _, nearest = cv2.distanceTransformWithLabels(
        strokes.astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    off_stroke = np.argwhere(~strokes)  # row-major, the order in which OpenCV numbers them
    source = off_stroke[nearest[strokes] - 1]
    filled = lab.copy()
    filled[strokes] = lab[source[:, 0], source[:, 1]]
    return filled


def pixel_scale(rgb: np.ndarray, max_scale: int = MAX_PIXEL_SCALE) -> tuple[int, int, int]:
    """Detect integer nearest-neighbour upscaling: (k, row offset, column offset), (1, 0, 0) if none.

    In a frame made of k x k blocks of one color each, colors change only
    from one block to the next: along each axis the pixel-to-pixel change
    rate inside blocks is (almost) nil while it is not at block borders. In
    any other frame, flat cel or painted, edges fall on every column alike.
    The largest k that fits both axes wins (a frame of 4 x 4 blocks is also
    one of 2 x 2 blocks). Changes of up to 20 levels do not count and the
    rate at any place inside blocks may reach 15 % of that across borders, which lets
    JPEG copies through (measured: 3 to 10 % at quality 80 to 95, against
    50 to 100 % on frames that were not blown up).
    """
    frame = rgb.astype(np.int16)
    rows = (np.abs(np.diff(frame, axis=0)).max(axis=2) > 20).mean(axis=1)
    cols = (np.abs(np.diff(frame, axis=1)).max(axis=2) > 20).mean(axis=0)
    for scale in range(max_scale, 1, -1):
        row_offset = _block_offset(rows, scale)
        col_offset = _block_offset(cols, scale)
        if row_offset is not None and col_offset is not None:
            return scale, row_offset, col_offset
    return 1, 0, 0


def _block_offset(change: np.ndarray, scale: int) -> int | None:
    """Offset of a block grid of ``scale`` that the change rates along one axis follow, if any.

    ``change[i]`` is the rate of changes between pixel i and i + 1, so block
    borders are where ``(i + 1 - offset) % scale == 0``.
    """
    if len(change) < 4 * scale:
        return None
    position = (np.arange(len(change)) + 1) % scale
    # one rate per place in the block: only the border place may see changes (a grid of half the
    # size would show up as a second busy place)
    rates = np.array([change[position == place].mean() for place in range(scale)])
    offset = int(rates.argmax())
    if rates[offset] > 0.01 and np.delete(rates, offset).max() <= 0.15 * rates[offset]:
        return offset
    return None


def _extract_upscaled_pixel_art(
    rgb: np.ndarray, scale: int, offsets: tuple[int, int], config: RegionLinesConfig
) -> np.ndarray:
    row_offset, col_offset = offsets
    height, width = rgb.shape[:2]
    top, left = (scale - row_offset) % scale, (scale - col_offset) % scale
    bottom, right = (-(height + top)) % scale, (-(width + left)) % scale
    padded = np.pad(rgb, ((top, bottom), (left, right), (0, 0)), mode="edge").astype(np.float32)
    # each art pixel is the mean of its block: exact when the copy is, denoised when it was compressed
    blocks = padded.reshape(padded.shape[0] // scale, scale, padded.shape[1] // scale, scale, 3)
    native = np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)
    lines = extract_region_lines(native, dataclasses.replace(config, pixel_scale=1))
    blown_up = np.repeat(np.repeat(lines, scale, axis=0), scale, axis=1)
    return thin_lines(blown_up[top : top + height, left : left + width])


def _color_boundaries(lab: np.ndarray, config: RegionLinesConfig) -> np.ndarray:
    smooth = cv2.GaussianBlur(lab, (0, 0), config.smoothing, borderType=cv2.BORDER_REPLICATE)
    # Sobel 3x3 is 8x the central derivative: divide it back to Lab units per pixel
    dx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE) / 8.0
    dy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE) / 8.0
    slope = np.sqrt((dx * dx + dy * dy).sum(axis=2))  # Delta E per pixel, all three channels together
    # a step of height h blurred by a Gaussian of sigma s has a peak slope of h / (s sqrt(2 pi))
    return slope >= config.min_contrast / (config.smoothing * math.sqrt(2.0 * math.pi))


def _dark_strokes(lightness_map: np.ndarray, config: RegionLinesConfig) -> np.ndarray:
    size = 2 * config.max_line_width + 1
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))

    def darkening(image: np.ndarray) -> np.ndarray:
        return cv2.morphologyEx(image, cv2.MORPH_CLOSE, disk, borderType=cv2.BORDER_REPLICATE) - image

    blurred = cv2.GaussianBlur(lightness_map, (0, 0), 0.7, borderType=cv2.BORDER_REPLICATE)
    smoothed, sharp = darkening(blurred), darkening(lightness_map)
    # A stroke keeps its contrast through the light blur, a dither dot does not. Ink twice as dark
    # as needed also counts where it keeps only half of it: pixel-exact outlines of cel frames.
    contrast = config.stroke_contrast
    stroke = (smoothed >= contrast) | ((sharp >= 2 * contrast) & (smoothed >= contrast / 2))
    return stroke & (lightness_map <= config.max_lightness)


def remove_specks(lines: np.ndarray, min_pixels: int) -> np.ndarray:
    """Drop 8-connected line pieces of fewer than ``min_pixels`` pixels."""
    if min_pixels <= 1 or not lines.any():
        return lines
    _count, labels, stats, _ = cv2.connectedComponentsWithStats(lines.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_pixels
    keep[0] = False
    return keep[labels]


def _zhang_suen_tables() -> tuple[np.ndarray, np.ndarray]:
    """Deletion tables of the two sub-iterations, indexed by the 8-neighbour code (bit k = P(k+2))."""
    first = np.zeros(256, bool)
    second = np.zeros(256, bool)
    for code in range(256):
        p = [(code >> bit) & 1 for bit in range(8)]  # P2 (north) .. P9 (north-west), clockwise
        neighbours = sum(p)
        transitions = sum(1 for k in range(8) if p[k] == 0 and p[(k + 1) % 8] == 1)
        if not (2 <= neighbours <= 6 and transitions == 1):
            continue
        p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
        first[code] = p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
        second[code] = p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
    return first, second


_THINNING_TABLES = _zhang_suen_tables()
# (row, column) offsets of P2 .. P9 around a pixel
_NEIGHBOUR_OFFSETS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def thin_lines(lines: np.ndarray, keep: np.ndarray | None = None, max_iterations: int | None = None) -> np.ndarray:
    """Thin a line mask to one-pixel, 8-connected strokes (Zhang and Suen, CACM 1984).

    Why this thinning: its deletions keep every stroke connected and never
    open the ground between two areas (a pixel goes only when its line
    neighbours form one run of two to six), so the areas a line mask closes
    stay closed. It is table driven: each sub-iteration looks up every
    pixel's 8-neighbour code at once, and thick bands need about half their
    width in iterations. Pixels of ``keep`` are never deleted (the rest thins
    onto them); ``max_iterations`` stops early, leaving parts wider than
    twice that as they are.
    """
    padded = np.pad(lines.astype(np.uint8), 1)
    width = padded.shape[1]
    current = padded.ravel()  # a view: deletions land in ``padded``
    candidates = np.flatnonzero(current)
    if keep is not None:
        protected = np.pad(np.asarray(keep, bool), 1).ravel()
        candidates = candidates[~protected[candidates]]
    # only line pixels can go: look up their neighbour codes alone (lines cover a few % of a frame)
    offsets = [dy * width + dx for dy, dx in _NEIGHBOUR_OFFSETS]
    iterations = 0
    while max_iterations is None or iterations < max_iterations:
        iterations += 1
        changed = False
        for table in _THINNING_TABLES:
            code = np.zeros(len(candidates), np.uint8)
            for bit, offset in enumerate(offsets):
                code |= current[candidates + offset] << bit
            delete = table[code]
            if delete.any():
                current[candidates[delete]] = 0
                candidates = candidates[~delete]
                changed = True
        if not changed:
            break
    return padded[1:-1, 1:-1] > 0


def line_endpoints(lines: np.ndarray, max_stroke_width: int = 32) -> np.ndarray:
    """Free ends of strokes: pixels of the thinned lines with at most one 8-neighbour on a line.

    Thinning stops after half of ``max_stroke_width`` rounds: what is left
    of wider blobs (a filled black shape) has no free ends anyway, and
    thinning it whole would take half its width in rounds.
    """
    skeleton = thin_lines(lines, max_iterations=max_stroke_width // 2).astype(np.uint8)
    neighbours = cv2.filter2D(skeleton, cv2.CV_16S, np.ones((3, 3), np.float32), borderType=cv2.BORDER_CONSTANT)
    return (skeleton > 0) & (neighbours <= 2)  # the count includes the pixel itself


def _config_class(method: str) -> type:
    try:
        return _CONFIG_OF_METHOD[method]
    except KeyError:
        raise UserError(f"unknown line-art method {method!r}; choose one of {', '.join(METHODS)}") from None


def sketch_from_color(
    rgb: np.ndarray,
    method: str = "regions",
    *,
    config: MethodConfig | None = None,
    generator: LineArtGenerator | None = None,
    max_gap: int | None = None,
) -> np.ndarray:
    """What ``extract-sketches`` draws for one colored frame: its line art, gaps up to ``max_gap`` px closed.

    ``max_gap=None`` leaves the gaps open. Pixel art blown up k times has its
    gaps k times wider, so the ``regions`` method scales ``max_gap`` with it.
    """
    from .gap_closing import GapClosingConfig, close_gaps

    lines = extract_lineart(rgb, method, config=config, generator=generator)
    if max_gap is None:
        return lines
    scale = pixel_scale(rgb)[0] if method == "regions" else 1
    return close_gaps(lines, GapClosingConfig(min(max_gap * scale, 64)))
