"""Compositing one frame: crop the backdrop, paint posed figures, ink the outlines, look up colors.

Everything is drawn into a region-id map first, without anti-aliasing
(``cv2.LINE_8``), so every pixel belongs to exactly one region. Outlines are
derived from that map: wherever two regions touch, the pixel on the side of
the region in front (the larger id, see :mod:`.regions`) becomes ink and takes
the outline id of that region's object. Thicker lines grow from there.
Colors are a table lookup on the final ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from .figures import Figure

SUBPIXEL_BITS = 4  # polygons are placed with 1/16 pixel precision (still drawn without anti-aliasing)
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


@dataclass(frozen=True)
class Sprite:
    """A figure posed and placed in view pixels: feet at (``x``, ``y``), scaled by ``scale_x``, ``scale_y``."""

    figure: Figure
    pose: int
    part_ids: tuple[int, ...]
    x: float
    y: float
    scale_x: float
    scale_y: float


class Compositor:
    """Renders region maps, line masks and colors of one world's frames."""

    def __init__(self, backdrop: np.ndarray, view_height: int, view_width: int, colors: np.ndarray,
                 outline_of: np.ndarray, line_width: int) -> None:
        self.backdrop = backdrop
        self.height, self.width = view_height, view_width
        self.colors = colors
        self.outline_of = outline_of
        self.line_width = line_width

    def paint(self, camera_x: int, camera_y: int, sprites: Iterable[Sprite]) -> np.ndarray:
        """The (H, W) int32 map of paint regions: the backdrop at the camera, then sprites back to front."""
        fills = self.backdrop[camera_y:camera_y + self.height, camera_x:camera_x + self.width].copy()
        one = 1 << SUBPIXEL_BITS
        for sprite in sprites:
            figure = sprite.figure
            reach = abs(sprite.scale_x) * figure.half_width
            if (sprite.x + reach < -1 or sprite.x - reach > self.width + 1
                    or sprite.y + figure.bottom * sprite.scale_y < -1
                    or sprite.y - figure.top * sprite.scale_y > self.height + 1):
                continue
            points = figure.vertices[sprite.pose] * np.float32((sprite.scale_x * one, sprite.scale_y * one))
            points += np.float32((sprite.x * one, sprite.y * one))
            points = np.rint(points).astype(np.int32)
            for part, region_id in zip(figure.part_slices, sprite.part_ids):
                cv2.fillPoly(fills, [points[part]], region_id, cv2.LINE_8, SUBPIXEL_BITS)
        return fills

    def ink(self, fills: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Outline the paint regions: returns (line mask (H, W) bool, region map (H, W) int32 with outline ids)."""
        lines = np.zeros(fills.shape, dtype=bool)
        lines[:, :-1] |= fills[:, :-1] > fills[:, 1:]
        lines[:, 1:] |= fills[:, 1:] > fills[:, :-1]
        lines[:-1] |= fills[:-1] > fills[1:]
        lines[1:] |= fills[1:] > fills[:-1]
        owner = fills
        if self.line_width > 1:
            grown = cv2.dilate(np.where(lines, fills, 0).astype(np.float32), _CROSS, iterations=self.line_width - 1)
            lines = grown > 0
            owner = grown.astype(np.int32)
        return lines, np.where(lines, self.outline_of[owner], fills)

    def colorize(self, regions: np.ndarray) -> np.ndarray:
        """The (H, W, 3) uint8 RGB frame: every region painted with its flat color."""
        return self.colors[regions]
