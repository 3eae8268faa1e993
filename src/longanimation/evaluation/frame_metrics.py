"""Frame similarity metrics with the field's protocol, and the frequency analysis of fig. 8.

Protocol (sec. 4.1): frames are resized to 256x256 and scaled to [0, 1]
before any metric. PSNR is computed per frame and averaged; SSIM uses an
11x11 Gaussian window with sigma 1.5 on each RGB channel (Wang et al. 2004).
Identical frames have infinite PSNR; it is capped at :data:`PSNR_CAP` so
reports stay finite JSON.

The frequency analysis of fig. 8 splits each frame with a 2-D FFT into a
low-frequency part (radius below ``cutoff`` of the Nyquist frequency: flat
colors) and the high-frequency rest (lines, edges), computes the PSNR of each,
and reports the relative decay from the first 14 frames (short-term) to the
whole shot (long-term).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PSNR_CAP = 100.0
PROTOCOL_SIZE = 256
SHORT_TERM_FRAMES = 14


def to_protocol(frames: np.ndarray, size: int = PROTOCOL_SIZE) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, size, size, 3) float64 in [0, 1]."""
    resized = [
        frame if frame.shape[:2] == (size, size) else cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
        for frame in frames
    ]
    return np.stack(resized).astype(np.float64) / 255.0


def psnr_per_frame(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """PSNR in dB of each frame pair; inputs in [0, 1], shape (T, H, W, C)."""
    mse = ((pred - target) ** 2).reshape(len(pred), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        values = 10.0 * np.log10(1.0 / mse)
    return np.minimum(values, PSNR_CAP)


def ssim_per_frame(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean SSIM of each frame pair (11x11 Gaussian window, sigma 1.5, per channel); inputs in [0, 1]."""
    c1, c2 = 0.01**2, 0.03**2

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    values = []
    for x, y in zip(pred, target, strict=True):
        mu_x, mu_y = blur(x), blur(y)
        var_x = blur(x * x) - mu_x**2
        var_y = blur(y * y) - mu_y**2
        cov = blur(x * y) - mu_x * mu_y
        ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
        values.append(float(ssim_map[5:-5, 5:-5].mean()))
    return np.asarray(values)


def split_frequencies(frames: np.ndarray, cutoff: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Split (T, H, W, C) frames into low- and high-frequency parts with a radial FFT mask.

    The low part keeps spatial frequencies up to ``cutoff`` of the Nyquist
    frequency; the high part is the rest. Real FFTs over contiguous planes.
    """
    height, width = frames.shape[1:3]
    planes = np.moveaxis(frames, -1, 1)  # (T, C, H, W): FFT over the last, contiguous axes
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    low_mask = np.sqrt(fx**2 + fy**2) <= cutoff * 0.5
    low = np.fft.irfft2(np.fft.rfft2(planes) * low_mask, s=(height, width))
    low = np.moveaxis(low, 1, -1)
    return low, frames - low


@dataclass
class FrequencyReport:
    """Per-frame PSNR of the low/high-frequency parts and their short-to-long relative decay."""

    low_psnr: np.ndarray
    high_psnr: np.ndarray
    low_decay: float
    high_decay: float


def relative_decay(values: np.ndarray, short_frames: int = SHORT_TERM_FRAMES) -> float:
    """Fig. 8's decay of a per-frame score: (short-term mean - whole-shot mean) / short-term mean."""
    short = float(values[:short_frames].mean())
    return (short - float(values.mean())) / short if short else 0.0


def frequency_analysis(
    pred: np.ndarray, target: np.ndarray, cutoff: float = 0.1, short_frames: int = SHORT_TERM_FRAMES
) -> FrequencyReport:
    """Fig. 8: PSNR of low and high frequencies per frame; decay = (short - long) / short."""
    pred_low, pred_high = split_frequencies(pred, cutoff)
    target_low, target_high = split_frequencies(target, cutoff)
    # Both parts are compared on the value range of the full signal ([0, 1]).
    low = psnr_per_frame(pred_low, target_low)
    high = psnr_per_frame(pred_high, target_high)
    return FrequencyReport(low, high, relative_decay(low, short_frames), relative_decay(high, short_frames))
