"""How much of each frame the keyframes show, and PSNR over what they show.

A region (a paint part or an outline) whose id appears in no keyframe's
region map has colors that no reference gives: a colorizer can only guess
them, so they lower long-term PSNR whatever the method. Splitting PSNR into
all pixels and *covered* pixels (pixels of regions some keyframe shows)
separates the part of the short-to-long decay a method could have avoided
from the part no reference-based method can. ``psnr_long_without_covered_decay``
puts a number on the second part: the long-term PSNR the same frames would
score if the covered pixels of every frame kept the short-term error
(their mean squared error over the short-term frames), with the uncovered
pixels as they are.

Measured with the Table 1 protocol (:mod:`.frame_metrics`): frames at
256x256 in [0, 1], region maps resized to that size with nearest
neighbours, PSNR per frame then averaged; a frame with no covered pixel is
left out of the covered mean.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import UserError
from .frame_metrics import PSNR_CAP


def covered_pixels(maps: np.ndarray, keyframe_maps: np.ndarray) -> np.ndarray:
    """(T, H, W) bool: pixels of ``maps`` whose region id appears in any of ``keyframe_maps`` (K, H', W')."""
    known = np.zeros(max(int(maps.max()), int(keyframe_maps.max())) + 1, dtype=bool)
    known[np.unique(keyframe_maps)] = True
    return known[maps]


def _psnr(squared_error_sum: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        values = 10.0 * np.log10(pixels / squared_error_sum)
    return np.where(pixels > 0, np.minimum(values, PSNR_CAP), np.nan)


def _resized_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if maps.shape[1:3] == size:
        return maps
    return np.stack([cv2.resize(m, (size[1], size[0]), interpolation=cv2.INTER_NEAREST) for m in maps])


def coverage_report(
    pred: np.ndarray, gt: np.ndarray, maps: np.ndarray, keyframe_maps: np.ndarray, short_frames: int
) -> dict:
    """Uncovered fraction and PSNR over all and over covered pixels, short- and long-term.

    ``pred``/``gt``: (T, S, S, 3) protocol frames in [0, 1]; ``maps``: (T, H, W)
    region ids aligned with the ground truth; ``keyframe_maps``: (K, H, W) the
    keyframes' region maps, same size as ``maps``.
    """
    if keyframe_maps.shape[1:] != maps.shape[1:]:
        raise UserError(
            f"keyframe region maps are {keyframe_maps.shape[2]}x{keyframe_maps.shape[1]} but --ids maps are "
            f"{maps.shape[2]}x{maps.shape[1]}"
        )
    covered = covered_pixels(_resized_maps(maps, gt.shape[1:3]), keyframe_maps).astype(np.float64)
    squared = ((pred - gt) ** 2).mean(axis=-1)  # (T, S, S): per-pixel error over RGB
    pixels = np.full(len(gt), float(squared[0].size))
    error, covered_error = squared.sum(axis=(1, 2)), (squared * covered).sum(axis=(1, 2))
    covered_count = covered.sum(axis=(1, 2))
    all_psnr = _psnr(error, pixels)
    covered_psnr = _psnr(covered_error, covered_count)
    uncovered = 1.0 - covered.mean(axis=(1, 2))
    shown = covered_count[:short_frames] > 0
    short_mse = (covered_error[:short_frames][shown] / covered_count[:short_frames][shown]).mean() if shown.any() else 0.0
    held_psnr = _psnr(covered_count * short_mse + error - covered_error, pixels)

    def mean(values: np.ndarray) -> float | None:
        values = values[~np.isnan(values)]
        return round(float(values.mean()), 6) if len(values) else None

    return {
        "keyframes": len(keyframe_maps),
        "uncovered_fraction_short": mean(uncovered[:short_frames]),
        "uncovered_fraction_long": mean(uncovered),
        "psnr_short": mean(all_psnr[:short_frames]),
        "psnr_long": mean(all_psnr),
        "covered_psnr_short": mean(covered_psnr[:short_frames]),
        "covered_psnr_long": mean(covered_psnr),
        "psnr_long_without_covered_decay": mean(held_psnr),
        "per_frame": {
            "uncovered_fraction": [round(float(v), 6) for v in uncovered],
            "covered_psnr": [None if np.isnan(v) else round(float(v), 6) for v in covered_psnr],
        },
    }
