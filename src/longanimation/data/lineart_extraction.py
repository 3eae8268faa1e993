"""Line art from colored animation frames: two classical extractors and the learned one.

- ``"dark-lines"`` (default, no weights): cel frames are flat color regions
  separated by drawn outlines that are thin and dark, though rarely pure black
  (dark brown, navy). A pixel is a line when it is dark in absolute terms AND
  darker than its surroundings: its CIE lightness L* is compared with a
  morphological closing of L* by a disk wider than any line (the "black
  top-hat"). The closing erases thin dark strokes and keeps everything wide,
  so a boundary between two flat fills (a step, not a stroke) and the inside
  of a dark flat fill both give zero contrast and are never lines.
- ``"xdog"``: the eXtended Difference-of-Gaussians (Winnemoeller et al., 2012)
  in its binary limit, for painted frames whose lines are not flat-dark. It is
  an edge detector: it also marks the darker side of strong color boundaries.
- ``"learned"``: the informative-drawings network
  (:class:`longanimation.models.lineart_generator.LineArtGenerator`), as in the
  LongAnimation release; weights must be given as a local safetensors file.

All three return a bool (H, W) mask, ``True`` on lines. A drawn sketch that
only needs thresholding goes through :func:`longanimation.data.lineart.binarize`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..errors import UserError

if TYPE_CHECKING:
    from ..models.lineart_generator import LineArtGenerator

LINE_THRESHOLD = 0.78
"""Learned extractor: output value below which a pixel is a line (the LongAnimation release's threshold)."""

METHODS = ("dark-lines", "xdog", "learned")


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
        if self.min_contrast <= 0 or not 0 < self.max_lightness <= 100 or self.max_line_width < 1:
            raise UserError(
                "dark-lines needs min_contrast > 0, max_lightness within (0, 100] and max_line_width >= 1, "
                f"got {self.min_contrast}, {self.max_lightness}, {self.max_line_width}"
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
        if self.sigma <= 0 or self.k <= 1 or self.sharpening < 0:
            raise UserError(
                f"xdog needs sigma > 0, k > 1 and sharpening >= 0, got {self.sigma}, {self.k}, {self.sharpening}"
            )


@dataclass(frozen=True)
class LearnedLinesConfig:
    """Settings of the learned extractor: lines where the network output is below ``threshold``."""

    threshold: float = LINE_THRESHOLD

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise UserError(f"the learned line threshold must be within (0, 1), got {self.threshold}")


MethodConfig = DarkLinesConfig | XDoGConfig | LearnedLinesConfig

_CONFIG_OF_METHOD: dict[str, type] = {
    "dark-lines": DarkLinesConfig,
    "xdog": XDoGConfig,
    "learned": LearnedLinesConfig,
}
_THRESHOLD_FIELD = {DarkLinesConfig: "min_contrast", XDoGConfig: "epsilon", LearnedLinesConfig: "threshold"}


def method_config(method: str, threshold: float | None = None) -> MethodConfig:
    """The default settings of ``method``, with its threshold replaced if ``threshold`` is given."""
    config_class = _config_class(method)
    config = config_class()
    if threshold is None:
        return config
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


def _config_class(method: str) -> type:
    try:
        return _CONFIG_OF_METHOD[method]
    except KeyError:
        raise UserError(f"unknown line-art method {method!r}; choose one of {', '.join(METHODS)}") from None
