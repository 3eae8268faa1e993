"""Mapping frames of any size and aspect ratio to the model's resolution and back.

The model works at a fixed size whose sides are multiples of
``spatial_compression * patch_size`` (16 for CogVideoX). A shot of any size is
scaled to fit inside that size keeping its aspect ratio, centred and padded
(white for line art and keyframes, the paper's sketch background); the
generated frames are cropped back to the content and resized to the input
size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def model_size_for(height: int, width: int, area: int, multiple: int = 16) -> tuple[int, int]:
    """A (height, width) of about ``area`` pixels with the shot's aspect ratio, sides multiples of ``multiple``."""
    scale = (area / (height * width)) ** 0.5
    return (
        max(multiple, round(height * scale / multiple) * multiple),
        max(multiple, round(width * scale / multiple) * multiple),
    )


@dataclass(frozen=True)
class Letterbox:
    """Fit ``source`` (height, width) inside ``target`` keeping aspect ratio, centred with padding."""

    source: tuple[int, int]
    target: tuple[int, int]

    @property
    def content(self) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the scaled shot inside the target frame."""
        (src_h, src_w), (dst_h, dst_w) = self.source, self.target
        scale = min(dst_h / src_h, dst_w / src_w)
        height, width = max(1, round(src_h * scale)), max(1, round(src_w * scale))
        return (dst_h - height) // 2, (dst_w - width) // 2, height, width

    @property
    def scale(self) -> float:
        """Input pixels per pixel of the model's frame (along the side that fills the target)."""
        _, _, height, width = self.content
        return max(self.source[0] / height, self.source[1] / width)

    def lineart_to_model(self, mask: np.ndarray) -> np.ndarray:
        """Binary line art (H, W) bool -> model size; thin lines survive downscaling."""
        top, left, height, width = self.content
        coverage = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
        out = np.zeros(self.target, bool)
        out[top : top + height, left : left + width] = coverage >= 0.25
        return out

    def color_to_model(self, rgb: np.ndarray) -> np.ndarray:
        """Colored frame (H, W, 3) uint8 -> model size, padding white."""
        top, left, height, width = self.content
        interpolation = cv2.INTER_AREA if height < self.source[0] else cv2.INTER_CUBIC
        out = np.full((*self.target, 3), 255, np.uint8)
        out[top : top + height, left : left + width] = cv2.resize(rgb, (width, height), interpolation=interpolation)
        return out

    def color_from_model(self, rgb: np.ndarray) -> np.ndarray:
        """Generated frame at model size -> the input's size (crop the padding, resize back)."""
        top, left, height, width = self.content
        crop = np.ascontiguousarray(rgb[top : top + height, left : left + width])
        if (height, width) == self.source:
            return crop
        interpolation = cv2.INTER_AREA if height > self.source[0] else cv2.INTER_CUBIC
        return cv2.resize(crop, (self.source[1], self.source[0]), interpolation=interpolation)
