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
* :func:`remove_lines`: every line pixel takes the color of the nearest
  non-line pixel (the color layer).
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from ..errors import UserError


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
    if frame.shape[:2] != lineart.shape:
        raise UserError(f"frame is {frame.shape[1]}x{frame.shape[0]} but its line art {lineart.shape[1]}x{lineart.shape[0]}")
    labels, count = closed_regions(lineart)
    colors = region_medians(frame, labels, count)
    if palette is not None:
        colors = snap_to_palette(colors, palette, palette_tolerance)
    return np.where(lineart[..., None], frame, colors[labels])


def remove_lines(frame: np.ndarray, lineart: np.ndarray) -> np.ndarray:
    """The color layer: each line pixel of ``frame`` takes the color of the nearest non-line pixel."""
    if not lineart.any() or lineart.all():
        return frame.copy()
    # Distance to the nearest zero pixel (non-line), with that pixel's index as label.
    _, nearest = cv2.distanceTransformWithLabels(
        lineart.astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    paper = ~lineart
    source_of_label = np.zeros(int(nearest.max()) + 1, np.int64)
    source_of_label[nearest[paper]] = np.flatnonzero(paper.ravel())
    pixels = frame.reshape(-1, 3)
    return pixels[source_of_label[nearest]].reshape(frame.shape)
