"""Long-term color consistency measured on regions with known flat colors.

For every region (an object's paint part) and frame, the mean predicted color
over the region's interior pixels (pixels whose 3x3 neighbourhood lies in the
same region, so blurred boundaries and lines do not count) is compared with
its reference color: the flat part color of the manifest, or the mean
ground-truth color when there is no manifest. Colors are compared in CIELAB
(sRGB, D65); a difference is the CIE76 ΔE, the Euclidean distance in L*a*b*
(about 2.3 is just noticeable; 10 is an obvious shift). A region counts as
visible in a frame when it has at least :data:`MIN_PIXELS` interior pixels.

Reported per object (its parts weighted by their pixel counts) and per part:

* **color error over time**: ΔE per frame, its mean, its maximum and where;
* **agreement across segments**: each segment's mean predicted color of the
  part, and the spread of those means (root mean square distance to their
  centroid, ΔE units) next to the same spread of the reference colors;
  objects absent from frame 0 (the keyframe) are flagged: the model never saw
  their colors;
* **seam jumps**: the change of the predicted color across each seam minus
  the change of the reference color, ``|(P_b - P_a) - (R_b - R_a)|``;
* **worst (object, frame)** pairs whose worst part is off by more than the
  threshold, and **worst jumps**: frame-to-frame changes of an object's color
  that the reference does not have (a one-frame flash shows as two jumps).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import UserError
from .region_truth import Region, RegionTruth
from .segments import Segmentation

MIN_PIXELS = 16
DEFAULT_THRESHOLD = 10.0
WORST_LIMIT = 20


@dataclass
class RegionColors:
    """Per frame and region: interior pixel count, mean predicted and reference CIELAB color (NaN if unseen)."""

    pixels: np.ndarray
    pred: np.ndarray
    ref: np.ndarray

    @property
    def visible(self) -> np.ndarray:
        return self.pixels >= MIN_PIXELS


def interior(ids: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood holds a single region id."""
    ids16 = ids.astype(np.uint16)
    kernel = np.ones((3, 3), np.uint8)
    return cv2.erode(ids16, kernel, borderType=cv2.BORDER_REPLICATE) == cv2.dilate(
        ids16, kernel, borderType=cv2.BORDER_REPLICATE
    )


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB colors in [0, 255], any shape (..., 3), to CIELAB (D65); NaN stays NaN."""
    flat = np.asarray(rgb, dtype=np.float64).reshape(-1, 1, 3)
    missing = np.isnan(flat).any(axis=2)
    image = np.nan_to_num(flat / 255.0).astype(np.float32)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab).astype(np.float64)
    lab[missing] = np.nan
    return lab.reshape(np.shape(rgb))


def _resized(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if frame.shape[:2] == shape:
        return frame
    shrink = frame.shape[0] > shape[0]
    return cv2.resize(frame, (shape[1], shape[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def region_colors(pred: np.ndarray, gt: np.ndarray, truth: RegionTruth) -> RegionColors:
    """Measure every region of ``truth`` in every frame; ``pred`` is resized to the maps' size if needed."""
    maps, regions = truth.maps, truth.regions
    if len(maps) != len(gt):
        raise UserError(f"--ids has {len(maps)} region maps but the ground truth has {len(gt)} frames")
    if gt.shape[1:3] != maps.shape[1:3]:
        raise UserError(
            f"region maps are {maps.shape[2]}x{maps.shape[1]} but ground-truth frames are {gt.shape[2]}x{gt.shape[1]}"
        )
    if not regions:
        raise UserError("no regions to evaluate: the manifest names no paint regions (objects[*].parts)")
    count = len(regions)
    lookup = np.full(max(int(maps.max()), max((r.id for r in regions), default=0)) + 1, count)
    lookup[[r.id for r in regions]] = np.arange(count)
    pixels = np.zeros((len(maps), count))
    pred_sum = np.zeros((len(maps), count, 3))
    gt_sum = np.zeros((len(maps), count, 3))
    for t, ids in enumerate(maps):
        inside = interior(ids)
        column = lookup[ids[inside]]
        pixels[t] = np.bincount(column, minlength=count + 1)[:count]
        pred_pixels = _resized(pred[t], ids.shape)[inside].astype(np.float64)
        gt_pixels = gt[t][inside].astype(np.float64)
        for channel in range(3):
            pred_sum[t, :, channel] = np.bincount(column, pred_pixels[:, channel], minlength=count + 1)[:count]
            gt_sum[t, :, channel] = np.bincount(column, gt_pixels[:, channel], minlength=count + 1)[:count]
    seen = (pixels >= MIN_PIXELS)[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        pred_mean = np.where(seen, pred_sum / pixels[..., None], np.nan)
        gt_mean = np.where(seen, gt_sum / pixels[..., None], np.nan)
    flat = np.array([r.color if r.color is not None else (np.nan,) * 3 for r in regions], dtype=np.float64)
    ref_mean = np.where(np.isnan(flat)[None] | ~seen, gt_mean, flat[None])
    return RegionColors(pixels, srgb_to_lab(pred_mean), srgb_to_lab(ref_mean))


def _norm(values: np.ndarray) -> np.ndarray:
    return np.sqrt((values**2).sum(axis=-1))


def _quiet_nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmean`` without the warning for all-NaN slices (they give NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def _weighted(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean over the last axis, ignoring NaN values; NaN where no weight remains."""
    weights = np.where(np.isnan(values), 0.0, weights)
    total = weights.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (np.nan_to_num(values) * weights).sum(axis=-1) / total, np.nan)


def change_error(colors: RegionColors, a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """``|(P_b - P_a) - (R_b - R_a)|`` per region (NaN unless visible in both frames)."""
    return _norm((colors.pred[b] - colors.pred[a]) - (colors.ref[b] - colors.ref[a]))


def segment_spread(lab: np.ndarray, segmentation: Segmentation) -> np.ndarray:
    """Per region: RMS distance of its per-segment mean colors to their centroid (NaN if seen in < 2 segments)."""
    means = np.stack([_quiet_nanmean(lab[start:end], axis=0) for start, end in segmentation.ranges])
    seen = (~np.isnan(means[..., 0])).sum(axis=0)
    centroid = _quiet_nanmean(means, axis=0)
    spread = np.sqrt(_quiet_nanmean(_norm(means - centroid[None]) ** 2, axis=0))
    return np.where(seen >= 2, spread, np.nan)


def _value(number: float) -> float | None:
    return None if np.isnan(number) else round(float(number), 4)


def _summary(errors: np.ndarray, visible: np.ndarray) -> dict:
    """Frames seen, first seen, mean / max ΔE and the worst frame of a per-frame series."""
    if not visible.any():
        return {
            "frames_visible": 0,
            "first_visible": None,
            "mean_delta_e": None,
            "max_delta_e": None,
            "worst_frame": None,
        }
    worst = int(np.nanargmax(errors))
    return {
        "frames_visible": int(visible.sum()),
        "first_visible": int(np.argmax(visible)),
        "mean_delta_e": _value(np.nanmean(errors)),
        "max_delta_e": _value(errors[worst]),
        "worst_frame": worst,
    }


@dataclass
class Objects:
    """Regions grouped by object: ids, names and the region columns of each."""

    ids: list[int]
    names: list[str]
    columns: list[list[int]]

    @classmethod
    def of(cls, regions: list[Region]) -> Objects:
        groups: dict[int, list[int]] = {}
        for column, region in enumerate(regions):
            groups.setdefault(region.object_id, []).append(column)
        names = [regions[columns[0]].object_name for columns in groups.values()]
        return cls(list(groups), names, list(groups.values()))

    def mean(self, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Weighted mean over each object's regions: (..., R) -> (..., O)."""
        return np.stack([_weighted(values[..., c], weights[..., c]) for c in self.columns], axis=-1)

    def worst(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Largest value over each object's regions and the column holding it: (T, R) -> (T, O) twice."""
        filled = np.nan_to_num(values, nan=-np.inf)
        best = np.stack([np.asarray(c)[np.argmax(filled[:, c], axis=1)] for c in self.columns], axis=1)
        return np.take_along_axis(filled, best, axis=1), best


def _ranked(values: np.ndarray, threshold: float, entry: Callable[[int, int], dict]) -> list[dict]:
    """Entries for the (frame, object) cells of ``values`` above ``threshold``, largest first (at most WORST_LIMIT)."""
    cells = np.argwhere(values > threshold)
    order = np.argsort(-values[cells[:, 0], cells[:, 1]], kind="stable")[:WORST_LIMIT]
    return [entry(int(t), int(o)) for t, o in cells[order]]


def _worst_list(values: np.ndarray, objects: Objects, regions: list[Region], threshold: float) -> list[dict]:
    """Worst (object, frame) pairs by their worst part's value, with that part."""
    worst, column = objects.worst(values)

    def entry(t: int, o: int) -> dict:
        part = regions[column[t, o]].part_name
        return {
            "object": objects.names[o],
            "object_id": objects.ids[o],
            "frame": t,
            "part": part,
            "delta_e": _value(worst[t, o]),
        }

    return _ranked(worst, threshold, entry)


def consistency_report(
    colors: RegionColors, regions: list[Region], segmentation: Segmentation, threshold: float = DEFAULT_THRESHOLD
) -> dict:
    """Everything listed in the module docstring, as a JSON-ready dict."""
    visible = colors.visible
    weights = np.where(visible, colors.pixels, 0.0)
    errors = np.where(visible, _norm(colors.pred - colors.ref), np.nan)
    frames = np.arange(len(errors))
    jumps = np.full_like(errors, np.nan)
    jumps[1:] = change_error(colors, frames[:-1], frames[1:])
    pred_spread = segment_spread(colors.pred, segmentation)
    ref_spread = segment_spread(colors.ref, segmentation)
    objects = Objects.of(regions)
    object_errors = objects.mean(errors, weights)
    object_visible = np.stack([visible[:, c].any(axis=1) for c in objects.columns], axis=1)
    total_pixels = weights.sum(axis=0)
    object_spread = objects.mean(pred_spread, total_pixels)
    object_ref_spread = objects.mean(ref_spread, total_pixels)
    seams = segmentation.seams()
    object_seams = np.array(
        [objects.mean(change_error(colors, a, b), np.minimum(weights[a], weights[b])) for a, b in seams]
    ).reshape(len(seams), len(objects.ids))

    def part_entry(column: int) -> dict:
        return {
            "region_id": regions[column].id,
            "part": regions[column].part_name,
            **_summary(errors[:, column], visible[:, column]),
            "segment_spread": _value(pred_spread[column]),
            "reference_segment_spread": _value(ref_spread[column]),
        }

    def object_entry(o: int) -> dict:
        seam_jumps = object_seams[:, o][~np.isnan(object_seams[:, o])]
        return {
            "object_id": objects.ids[o],
            "object": objects.names[o],
            **_summary(object_errors[:, o], object_visible[:, o]),
            "absent_in_frame_0": bool(not object_visible[0, o]),
            "segments_visible": sum(bool(object_visible[s:e, o].any()) for s, e in segmentation.ranges),
            "segment_spread": _value(object_spread[o]),
            "reference_segment_spread": _value(object_ref_spread[o]),
            "max_seam_jump": _value(seam_jumps.max()) if len(seam_jumps) else None,
            "delta_e_per_frame": [_value(v) for v in object_errors[:, o]],
            "parts": [part_entry(column) for column in objects.columns[o]],
        }

    def seam_entry(index: int) -> dict:
        values = object_seams[index]
        present = ~np.isnan(values)
        worst = int(np.nanargmax(values)) if present.any() else None
        return {
            "frames": list(seams[index]),
            "mean_jump": _value(values[present].mean()) if present.any() else None,
            "worst_object": None if worst is None else objects.names[worst],
            "worst_jump": None if worst is None else _value(values[worst]),
        }

    seam_means = object_seams[~np.isnan(object_seams)]
    spreads = object_spread[~np.isnan(object_spread)]
    return {
        "color_space": "CIELAB (sRGB, D65); ΔE = CIE76, the Euclidean distance in L*a*b*",
        "threshold_delta_e": threshold,
        "min_interior_pixels": MIN_PIXELS,
        "segments": {
            "source": segmentation.source,
            "ranges": [list(r) for r in segmentation.ranges],
            "seams": [list(s) for s in seams],
        },
        "summary": {
            "mean_delta_e": _value(_weighted(errors.ravel(), weights.ravel())),
            "mean_segment_spread": _value(spreads.mean()) if len(spreads) else None,
            "mean_seam_jump": _value(seam_means.mean()) if len(seam_means) else None,
            "objects_absent_in_frame_0": [name for o, name in enumerate(objects.names) if not object_visible[0, o]],
        },
        "delta_e_per_frame": [_value(v) for v in _weighted(errors, weights)],
        "objects": [object_entry(o) for o in range(len(objects.ids))],
        "seams": [seam_entry(index) for index in range(len(seams))],
        "worst": _worst_list(errors, objects, regions, threshold),
        "worst_jumps": _worst_list(jumps, objects, regions, threshold),
    }
