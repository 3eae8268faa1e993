"""Run every metric on one predicted shot against its ground truth and collect a JSON-ready report.

Table 1 of the paper reports each metric short-term (the first 14 frames) and
long-term (all frames); FVD's short-term value uses the first 16-frame clip,
as I3D needs 16 frames. PSNR, SSIM and the fig. 8 frequency analysis always
run; LPIPS, FID and FVD run only when their network is given, otherwise the
report says why they were skipped. Region-based color consistency runs when
region-id maps are given; with the keyframes' region maps too, the report
splits PSNR into pixels the keyframes show and pixels they do not
(:mod:`.keyframe_coverage`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import UserError
from .consistency import DEFAULT_THRESHOLD, consistency_report, region_colors
from .distribution import clip_starts, frechet_distance, i3d_features, inception_features
from .frame_metrics import (
    PROTOCOL_SIZE,
    PSNR_CAP,
    SHORT_TERM_FRAMES,
    frequency_analysis,
    psnr_per_frame,
    relative_decay,
    ssim_per_frame,
    to_protocol,
)
from .keyframe_coverage import coverage_report
from .networks import I3D, FIDInceptionV3, LPIPSAlexNet, load_network
from .networks.i3d import CLIP_FRAMES
from .perceptual import lpips_per_frame
from .region_truth import RegionTruth
from .segments import Segmentation

# metric -> (option, what the weights are)
WEIGHTS = {
    "lpips": ("--lpips-weights", "LPIPS needs AlexNet+LPIPS weights as a local safetensors file"),
    "fid": (
        "--inception-weights",
        "FID needs the FID Inception-v3 (pt_inception-2015-12-05) weights as a local safetensors file",
    ),
    "fvd": ("--i3d-weights", "FVD needs the Kinetics-400 I3D weights as a local safetensors file"),
}
FREQUENCY_CHUNK = 32
FREQUENCY_CUTOFF = 0.1  # low band: radius up to this fraction of the Nyquist frequency
VARIANCE_NOTE = (
    "FID and FVD estimated from one shot ({frames} frames, {clips} clips of 16 frames) have high variance and "
    "are biased by the small sample; compare methods on the same shots, and do not compare with values computed "
    "over a whole test set (the paper's)."
)


ASPECT_TOLERANCE = 0.01  # relative; at least one pixel either way (odd sizes padded to even by the video writer)


def check_frame_sizes(pred_shape: tuple[int, ...], gt_shape: tuple[int, ...]) -> str | None:
    """Refuse frames of different aspect ratios; say how frames of one aspect but two sizes are compared.

    The protocol resizes both to :data:`PROTOCOL_SIZE` squared, which compares
    the same picture only when both have the same aspect ratio (within one
    pixel or :data:`ASPECT_TOLERANCE`). Returns None for equal sizes, else the
    note the report carries.
    """
    (pred_h, pred_w), (gt_h, gt_w) = pred_shape[1:3], gt_shape[1:3]
    if (pred_h, pred_w) == (gt_h, gt_w):
        return None
    if min(pred_h, pred_w, gt_h, gt_w) < 1:
        raise UserError(f"empty frames: prediction {pred_w}x{pred_h}, ground truth {gt_w}x{gt_h}")
    width_off = abs(pred_w * gt_h / pred_h - gt_w) > max(1.0, ASPECT_TOLERANCE * gt_w)
    height_off = abs(pred_h * gt_w / pred_w - gt_h) > max(1.0, ASPECT_TOLERANCE * gt_h)
    if width_off or height_off:
        raise UserError(
            f"prediction frames are {pred_w}x{pred_h} but ground-truth frames are {gt_w}x{gt_h}: their aspect "
            f"ratios differ ({pred_w / pred_h:.3f} vs {gt_w / gt_h:.3f}), so they cannot show the same picture; "
            "give frames of the same size (or at least the same aspect ratio)"
        )
    return (
        f"Prediction frames ({pred_w}x{pred_h}) and ground-truth frames ({gt_w}x{gt_h}) differ in size but not "
        f"in aspect ratio: both are resized to {PROTOCOL_SIZE}x{PROTOCOL_SIZE} before scoring, as always."
    )


def skipped_reason(metric: str) -> str:
    """Why ``metric`` did not run when its weights were not given."""
    option, needs = WEIGHTS[metric]
    return f"skipped: no {option} given ({needs}; nothing is downloaded)"


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything torch does not know is a :class:`UserError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}: use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name} requested but CUDA is not available")
    return device


@dataclass
class Networks:
    """The networks of the heavy metrics; None where no weights were given."""

    lpips: LPIPSAlexNet | None = None
    inception: FIDInceptionV3 | None = None
    i3d: I3D | None = None

    @classmethod
    def load(
        cls,
        lpips: str | os.PathLike | None,
        inception: str | os.PathLike | None,
        i3d: str | os.PathLike | None,
        device: torch.device,
    ) -> Networks:
        """Load each given safetensors file (pickles refused, layouts checked strictly)."""
        return cls(
            lpips=load_network(LPIPSAlexNet(), lpips, device) if lpips else None,
            inception=load_network(FIDInceptionV3(), inception, device) if inception else None,
            i3d=load_network(I3D(), i3d, device) if i3d else None,
        )


@dataclass
class ConsistencyInputs:
    """Region ground truth, segments and the ΔE threshold for the worst lists."""

    truth: RegionTruth
    segmentation: Segmentation
    threshold: float = DEFAULT_THRESHOLD
    keyframe_maps: np.ndarray | None = None  # (K, H, W) region maps of the keyframes: adds keyframe coverage


@dataclass
class _Table:
    """Table 1 cells (short-term, long-term) per metric, and reasons for skipped metrics."""

    short: dict = field(default_factory=dict)
    long: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)

    def put(self, metric: str, short: float | None, long: float | None) -> None:
        self.short[metric] = None if short is None else round(float(short), 6)
        self.long[metric] = None if long is None else round(float(long), 6)

    def skip(self, metric: str, reason: str) -> None:
        self.put(metric, None, None)
        self.skipped[metric] = reason


def evaluate(
    pred: np.ndarray,
    gt: np.ndarray,
    networks: Networks,
    consistency: ConsistencyInputs | None = None,
) -> dict:
    """All metrics of uint8 (T, H, W, 3) ``pred`` against ``gt``.

    Frame counts must match, and so must aspect ratios (:func:`check_frame_sizes`);
    sizes may differ, and the report's notes then say so.
    """
    if len(pred) != len(gt):
        raise UserError(f"prediction has {len(pred)} frames but the ground truth has {len(gt)}")
    size_note = check_frame_sizes(pred.shape, gt.shape)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    colors = None
    if consistency is not None:  # first: a misaligned region map fails before the slow metrics
        colors = region_colors(pred, gt, consistency.truth)
        timings["region_colors"] = time.perf_counter() - clock
        clock = time.perf_counter()
    frames = len(gt)
    short = min(SHORT_TERM_FRAMES, frames)
    pred_p, gt_p = to_protocol(pred), to_protocol(gt)
    table, per_frame = _Table(), {}
    per_frame["psnr"] = psnr_per_frame(pred_p, gt_p)
    per_frame["ssim"] = ssim_per_frame(pred_p, gt_p)
    table.put("psnr", per_frame["psnr"][:short].mean(), per_frame["psnr"].mean())
    table.put("ssim", per_frame["ssim"][:short].mean(), per_frame["ssim"].mean())
    frequency = _frequency(pred_p, gt_p, short)
    per_frame["low_frequency_psnr"], per_frame["high_frequency_psnr"] = frequency.pop("low"), frequency.pop("high")
    timings["psnr_ssim_frequency"] = time.perf_counter() - clock

    clock = time.perf_counter()
    if networks.lpips is None:
        table.skip("lpips", skipped_reason("lpips"))
    else:
        per_frame["lpips"] = lpips_per_frame(pred_p, gt_p, networks.lpips)
        table.put("lpips", per_frame["lpips"][:short].mean(), per_frame["lpips"].mean())
        timings["lpips"] = time.perf_counter() - clock
    distribution = _distribution_metrics(pred_p, gt_p, networks, table, timings)

    report = {
        "tool": "longanimation evaluate",
        "protocol": {
            "size": [PROTOCOL_SIZE, PROTOCOL_SIZE],
            "range": [0.0, 1.0],
            "short_term_frames": short,
            "long_term_frames": frames,
            "psnr_cap_db": PSNR_CAP,
            "ssim": "11x11 Gaussian window, sigma 1.5, per RGB channel",
        },
        "frames": frames,
        "table": {"short_term": table.short, "long_term": table.long},
        "skipped": table.skipped,
        "distribution": distribution,
        "frequency": frequency,
        "per_frame": {name: [round(float(v), 6) for v in values] for name, values in per_frame.items()},
    }
    if consistency is None:
        report["consistency"] = {"skipped": "skipped: no --ids given (region-id maps aligned with --gt are needed)"}
    else:
        report["consistency"] = {
            "reference": consistency.truth.source,
            **consistency_report(colors, consistency.truth.regions, consistency.segmentation, consistency.threshold),
        }
        if consistency.keyframe_maps is not None:
            report["keyframe_coverage"] = coverage_report(
                pred_p, gt_p, consistency.truth.maps, consistency.keyframe_maps, short
            )
    report["notes"] = ([size_note] if size_note else []) + _notes(frames, distribution)
    report["timings_s"] = {name: round(value, 3) for name, value in timings.items()}
    return report


def _frequency(pred: np.ndarray, gt: np.ndarray, short: int) -> dict:
    """Fig. 8 on protocol frames, :data:`FREQUENCY_CHUNK` frames at a time (the FFTs of a whole shot need GBs).

    Returns the summary plus the per-frame PSNRs under ``low`` and ``high``;
    the decays are :func:`~.frame_metrics.relative_decay` over the whole shot.
    """
    chunks = [
        frequency_analysis(pred[s : s + FREQUENCY_CHUNK], gt[s : s + FREQUENCY_CHUNK], cutoff=FREQUENCY_CUTOFF)
        for s in range(0, len(gt), FREQUENCY_CHUNK)
    ]
    summary: dict = {"cutoff": FREQUENCY_CUTOFF, "short_term_frames": short}
    for band in ("low", "high"):
        values = np.concatenate([getattr(chunk, f"{band}_psnr") for chunk in chunks])
        summary |= {
            f"{band}_psnr_short": round(float(values[:short].mean()), 6),
            f"{band}_psnr_long": round(float(values.mean()), 6),
            f"{band}_decay": round(relative_decay(values, short), 6),
            band: values,
        }
    return summary


def _distribution_metrics(
    pred: np.ndarray, gt: np.ndarray, networks: Networks, table: _Table, timings: dict[str, float]
) -> dict:
    """FID over frames and FVD over 16-frame clips; fills ``table`` and returns sample counts."""
    short = min(SHORT_TERM_FRAMES, len(gt))
    clips = len(clip_starts(len(gt)))
    info = {
        "fid": {
            "features": "Inception-v3 pool3 (2048-d), frames resized to 299",
            "samples_short": short,
            "samples_long": len(gt),
        },
        "fvd": {
            "features": "I3D Kinetics-400 logits, 16-frame clips, 224 centre crop, [-1, 1]",
            "clip_frames": CLIP_FRAMES,
            "clip_stride": CLIP_FRAMES,
            "clips_short": min(clips, 1),
            "clips_long": clips,
        },
    }
    clock = time.perf_counter()
    if networks.inception is None:
        table.skip("fid", skipped_reason("fid"))
    else:
        pred_features, gt_features = (
            inception_features(pred, networks.inception),
            inception_features(gt, networks.inception),
        )
        table.put(
            "fid",
            frechet_distance(pred_features[:short], gt_features[:short]),
            frechet_distance(pred_features, gt_features),
        )
        timings["fid"] = time.perf_counter() - clock
    clock = time.perf_counter()
    if networks.i3d is None:
        table.skip("fvd", skipped_reason("fvd"))
    elif clips == 0:
        table.skip("fvd", f"skipped: the shot has {len(gt)} frames, FVD needs at least {CLIP_FRAMES} (one I3D clip)")
    else:
        pred_features, gt_features = i3d_features(pred, networks.i3d), i3d_features(gt, networks.i3d)
        table.put(
            "fvd", frechet_distance(pred_features[:1], gt_features[:1]), frechet_distance(pred_features, gt_features)
        )
        timings["fvd"] = time.perf_counter() - clock
    return info


def _notes(frames: int, distribution: dict) -> list[str]:
    return [
        f"All metrics compare frames resized to {PROTOCOL_SIZE}x{PROTOCOL_SIZE} (aspect ratio not kept) in [0, 1].",
        VARIANCE_NOTE.format(frames=frames, clips=distribution["fvd"]["clips_long"]),
        "Short-term FID uses the first 14 frames and short-term FVD the first clip only: with fewer samples than "
        "feature dimensions the covariances are singular (zero for one sample), so these values mostly reflect "
        "the mean features.",
        "LPIPS/FID/FVD are only meaningful with the published pretrained weights converted to the documented "
        "key layouts.",
    ]
